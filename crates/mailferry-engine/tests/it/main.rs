//! The engine against real servers (the mail engine is driven end to end by the CLI tests;
//! here: groupware on Radicale and Xandikos).

mod groupware;
