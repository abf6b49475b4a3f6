//! mailferry-sieve against a real Dovecot/Pigeonhole from mailferry-testkit (`dovecot`),
//! and behind the testkit's fault-injecting proxy for a server that hangs or hangs up
//! (`faults`). Response shapes Dovecot never sends are covered by the parser's unit tests.

mod dovecot;
mod faults;
