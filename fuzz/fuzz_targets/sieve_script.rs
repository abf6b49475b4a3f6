//! A Sieve script from a source server: its requires read and its folders rewritten without
//! a panic; without a rewrite, the bytes come back unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailferry_engine::filters::{required_extensions, rewrite_folders, FolderRewrite};

fuzz_target!(|data: &[u8]| {
    let rewrite = FolderRewrite {
        pairs: vec![("INBOX.Sent".into(), "Sent Items".into())],
        source_prefix: "INBOX.".into(),
        source_delimiter: Some('.'),
        target_prefix: String::new(),
        target_delimiter: Some('/'),
    };
    let out = rewrite_folders(data, &rewrite);
    if out.changes.is_empty() {
        assert_eq!(out.content, data);
    }
    let _ = required_extensions(data);
});
