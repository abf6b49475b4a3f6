//! The engine against real servers: a mail pass on two Dovecot servers, and groupware on
//! Radicale and Xandikos (the CLI's tests drive both end to end as well).

mod groupware;
mod mail;
