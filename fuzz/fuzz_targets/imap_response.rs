//! One framed IMAP response, whatever its bytes: a response or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mailferry_imap::response::parse_response(bytes::Bytes::copy_from_slice(data));
});
