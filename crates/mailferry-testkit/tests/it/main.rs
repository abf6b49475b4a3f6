//! Integration tests of the testkit itself: real Dovecot instances, the corpus
//! filler checked with doveadm, quota and master user, the fault proxy, and PostgreSQL.

mod dovecot;
mod postgres;
mod proxy;
