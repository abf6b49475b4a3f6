//! Integration tests of the testkit itself: real Dovecot instances, the corpus
//! filler checked with doveadm, quota and master user, and the fault proxy.

mod dovecot;
mod proxy;
