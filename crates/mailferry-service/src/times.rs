//! Start and resync times: entered in the server's time zone (`YYYY-MM-DD HH:MM`), unless
//! they carry an explicit offset (RFC 3339), which wins.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Reads a time; `None` with a message saying what is expected.
pub fn parse_time(text: &str, zone: &TimeZone) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts.as_second());
    }
    let civil = text.replace('T', " ");
    let civil = if civil.len() == 16 {
        format!("{civil}:00")
    } else {
        civil
    };
    match civil.parse::<DateTime>() {
        Ok(dt) => dt.to_zoned(zone.clone()).map(|z| z.timestamp().as_second()).map_err(|e| format!("`{text}` does not exist in the server's time zone: {e}")),
        Err(_) => Err(format!("`{text}` is not a time: write YYYY-MM-DD HH:MM in the server's time zone, or RFC 3339 with an offset (2026-12-24T18:00:00+01:00)")),
    }
}

/// A time as the server's zone shows it.
pub fn show_time(seconds: i64, zone: &TimeZone) -> String {
    match Timestamp::from_second(seconds) {
        Ok(ts) => ts
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        Err(_) => seconds.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_and_offset() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let local = parse_time("2026-12-24 18:00", &berlin).unwrap();
        let explicit = parse_time("2026-12-24T18:00:00+01:00", &berlin).unwrap();
        assert_eq!(local, explicit);
        let utc = parse_time("2026-12-24T17:00:00Z", &berlin).unwrap();
        assert_eq!(utc, local);
        assert!(parse_time("24.12.2026", &berlin)
            .unwrap_err()
            .contains("YYYY-MM-DD"));
        assert_eq!(show_time(local, &berlin), "2026-12-24 18:00:00 +01:00");
    }
}
