//! A server's byte stream cut into reads of any size (the first byte sets the size): the
//! framer never panics, never returns more than its limit, and every frame parses or fails
//! cleanly.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailferry_imap::framing::Framer;

const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let mut framer = Framer::new(LIMIT);
    for chunk in stream.chunks(step) {
        framer.push(chunk);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.bytes.len() <= LIMIT);
                    let _ = mailferry_imap::response::parse_response(frame.bytes);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
