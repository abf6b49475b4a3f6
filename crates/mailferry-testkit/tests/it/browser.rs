//! The browser harness against a page served on loopback by the test itself: it loads,
//! elements are found, typed into and read, keys move the focus, and screenshots are PNGs.

use std::time::Duration;

use mailferry_testkit::browser::{keys, serve_page};
use mailferry_testkit::Browser;

const PAGE: &str = "<!doctype html><html lang=en><head><title>harness page</title></head>\
<body><h1 id=h>Hello</h1><label for=a>A</label><input id=a name=a>\
<label for=b>B</label><input id=b name=b><p id=out></p>\
<script>document.getElementById('a').addEventListener('input', e => \
document.getElementById('out').textContent = 'typed ' + e.target.value);</script></body></html>";

#[test]
fn browser_loads_types_reads_focuses_and_screenshots() {
    let address = serve_page(PAGE.to_string()).unwrap();
    let browser = Browser::start().unwrap();
    browser.goto(&address).unwrap();
    assert_eq!(browser.title().unwrap(), "harness page");
    assert_eq!(browser.find("#h").unwrap().text().unwrap(), "Hello");

    let a = browser.find("#a").unwrap();
    a.type_text("xyz").unwrap();
    assert_eq!(a.property("value").unwrap(), "xyz");
    browser
        .wait_until("the script to react", Duration::from_secs(5), |b| {
            Ok(b.find("#out")?.text()? == "typed xyz")
        })
        .unwrap();
    assert!(a.has_focus().unwrap());
    browser.press(keys::TAB).unwrap();
    assert_eq!(browser.focused_id().unwrap().as_deref(), Some("b"));
    assert!(browser.find("#nothing-like-this").is_err());
    let missing = browser
        .wait_for("#nothing-like-this", Duration::from_millis(300))
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("#nothing-like-this") && missing.contains("Hello"),
        "{missing}"
    );

    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("shots/page.png");
    browser.screenshot(&shot).unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 1000);
}
