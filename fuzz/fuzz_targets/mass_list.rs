//! A mass-migration list as an admin might paste it: every line checked, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = mailferry_service::ServiceConfig::new(std::env::temp_dir());
    let _ = mailferry_service::batch::check_formal(text, None, &config, 1_700_000_000);
});
