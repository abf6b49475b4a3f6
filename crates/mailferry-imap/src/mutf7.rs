//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3).
//!
//! Printable ASCII (0x20..=0x7e) stands for itself, `&` is written `&-`, and every other run
//! of characters is UTF-16BE in a modified base64 (`,` instead of `/`, no padding) between
//! `&` and `-`. Servers that have not enabled UTF8=ACCEPT send and expect names in this form.

use base64::alphabet::Alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

fn engine() -> GeneralPurpose {
    // The IMAP alphabet is standard base64 with ',' in place of '/'.
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")
            .expect("the modified base64 alphabet has 64 distinct characters");
    GeneralPurpose::new(
        &alphabet,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    )
}

/// Encodes a UTF-8 name into modified UTF-7.
pub fn encode(name: &str) -> String {
    let engine = engine();
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|unit| unit.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&engine.encode(bytes));
        out.push('-');
        pending.clear();
    };
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut pending, &mut out);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(ch.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Why a name is not valid modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a valid modified UTF-7 mailbox name: {reason}")]
pub struct Utf7Error {
    /// The name as the server sent it (lossily shown).
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Decodes a modified UTF-7 name into UTF-8.
pub fn decode(raw: &[u8]) -> Result<String, Utf7Error> {
    let fail = |reason| Utf7Error {
        name: String::from_utf8_lossy(raw).into_owned(),
        reason,
    };
    let engine = engine();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let byte = raw[i];
        if byte == b'&' {
            let end = raw[i + 1..]
                .iter()
                .position(|&b| b == b'-')
                .map(|p| i + 1 + p)
                .ok_or_else(|| fail("a `&` shift is not closed by `-`"))?;
            if end == i + 1 {
                out.push('&');
            } else {
                let bytes = engine
                    .decode(&raw[i + 1..end])
                    .map_err(|_| fail("bad base64 inside a `&...-` shift"))?;
                if bytes.len() % 2 != 0 {
                    return Err(fail("a shifted run has an odd number of bytes"));
                }
                let units: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                    .collect();
                let text =
                    String::from_utf16(&units).map_err(|_| fail("broken UTF-16 inside a shift"))?;
                out.push_str(&text);
            }
            i = end + 1;
        } else if (0x20..=0x7e).contains(&byte) {
            out.push(byte as char);
            i += 1;
        } else {
            return Err(fail("a byte outside printable ASCII"));
        }
    }
    Ok(out)
}

/// Decodes a name a server sent, accepting raw UTF-8 (servers with UTF8=ACCEPT enabled, and
/// some that ignore the rule) when it is not valid modified UTF-7.
pub fn decode_lenient(raw: &[u8]) -> String {
    match decode(raw) {
        Ok(name) => name,
        Err(_) => String::from_utf8_lossy(raw).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc3501_examples() {
        // RFC 3501 §5.1.3 gives this example.
        assert_eq!(
            decode(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(),
            "~peter/mail/台北/日本語"
        );
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(encode("Projekte Übersicht"), "Projekte &ANw-bersicht");
        assert_eq!(encode("A&B"), "A&-B");
        assert_eq!(decode(b"A&-B").unwrap(), "A&B");
        assert_eq!(encode("😀"), "&2D3eAA-");
    }

    #[test]
    fn rejects_broken_names() {
        assert!(decode(b"&ZeVnLIqe").is_err());
        assert!(decode(b"caf\xc3\xa9").is_err());
        assert_eq!(decode_lenient("café".as_bytes()), "café");
    }

    proptest! {
        #[test]
        fn round_trip(name in "\\PC*") {
            let encoded = encode(&name);
            prop_assert!(encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            prop_assert_eq!(decode(encoded.as_bytes()).unwrap(), name);
        }
    }
}
