//! INTERNALDATE (`date-time`, RFC 3501 §9): `"17-Jul-1996 02:44:25 -0700"`.
//!
//! Servers keep the instant, not always the zone: Dovecot's maildir stores a timestamp and
//! answers in its own zone. So dates are compared as instants.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Seconds since 1970-01-01T00:00:00Z of an IMAP date-time, `None` if it does not parse.
pub fn internal_date_to_unix(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, rest) = text.split_once(' ').map(|(d, r)| (d, r.trim_start()))?;
    let mut date_parts = date.split('-');
    let day: i64 = date_parts.next()?.trim().parse().ok()?;
    let month_name = date_parts.next()?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month_name))? as i64
        + 1;
    let year: i64 = date_parts.next()?.parse().ok()?;
    let (time, zone) = rest.split_once(' ')?;
    let mut time_parts = time.split(':');
    let hour: i64 = time_parts.next()?.parse().ok()?;
    let minute: i64 = time_parts.next()?.parse().ok()?;
    let second: i64 = time_parts.next()?.parse().ok()?;
    let zone = zone.trim();
    // ASCII only: the slices below are by byte (issue 19: a non-ASCII zone panicked).
    if zone.len() != 5
        || !zone.is_ascii()
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let sign = match &zone[..1] {
        "+" => 1,
        "-" => -1,
        _ => return None,
    };
    let zone_hours: i64 = zone[1..3].parse().ok()?;
    let zone_minutes: i64 = zone[3..5].parse().ok()?;
    let offset = sign * (zone_hours * 3600 + zone_minutes * 60);
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// An IMAP date-time in UTC for a Unix time.
pub fn unix_to_internal_date(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{day:02}-{}-{year:04} {:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_answers() {
        assert_eq!(internal_date_to_unix("01-Jan-1970 00:00:00 +0000"), Some(0));
        assert_eq!(
            internal_date_to_unix("17-Jul-1996 02:44:25 -0700"),
            Some(837_596_665)
        );
        assert_eq!(
            internal_date_to_unix(" 2-Jan-2015 10:00:00 +0100"),
            internal_date_to_unix("02-Jan-2015 09:00:00 +0000")
        );
        assert_eq!(
            internal_date_to_unix("14-Mar-1999 08:26:53 +0000"),
            internal_date_to_unix("14-Mar-1999 09:26:53 +0100")
        );
        assert_eq!(internal_date_to_unix("32-Jan-2015 10:00:00 +0100"), None);
        assert_eq!(internal_date_to_unix("02-Foo-2015 10:00:00 +0100"), None);
        assert_eq!(internal_date_to_unix("02-Jan-2015 10:00:00 0100"), None);
    }

    /// Issue 19: a zone of five bytes that are not five characters used to panic.
    #[test]
    fn a_non_ascii_zone_is_no_date_not_a_panic() {
        assert_eq!(internal_date_to_unix("01-Jan-2020 00:00:00 +é00"), None);
        assert_eq!(internal_date_to_unix("01-Jan-2020 00:00:00 ü+000"), None);
        assert_eq!(internal_date_to_unix("01-Jan-2020 00:00:00 +0€"), None);
    }

    proptest! {
        #[test]
        fn round_trip(seconds in -2_000_000_000i64..8_000_000_000) {
            prop_assert_eq!(internal_date_to_unix(&unix_to_internal_date(seconds)), Some(seconds));
        }

        #[test]
        fn any_text_is_a_date_or_none(text in "\\PC{0,40}") {
            let _ = internal_date_to_unix(&text);
        }
    }
}
