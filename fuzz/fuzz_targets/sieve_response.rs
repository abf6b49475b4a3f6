//! A ManageSieve server's bytes: responses one after the other, each a response, "more
//! bytes needed" or an error; never a panic, never past the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((_, used))) = mailferry_sieve::parse::parse_response(rest) {
        assert!(used > 0 && used <= rest.len());
        rest = &rest[used..];
    }
});
