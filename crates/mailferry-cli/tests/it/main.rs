//! Integration tests of the `mailferry` binary against real servers from mailferry-testkit.

mod common;
mod migrate;
mod probe;
mod service_crash;
