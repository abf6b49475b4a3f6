//! Integration tests of the testkit itself: real Dovecot instances, the corpus
//! filler checked with doveadm, quota and master user, the fault proxy, PostgreSQL, and the
//! headless browser.

mod browser;
mod dav;
mod dovecot;
mod postgres;
mod proxy;
