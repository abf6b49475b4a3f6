//! Integration tests of the `mailferry` binary against real servers from mailferry-testkit.

mod batch;
mod common;
mod doctor;
mod fidelity;
mod filters;
mod groupware;
mod job_file;
mod migrate;
mod packaging;
mod probe;
mod refill;
mod service;
mod service_crash;
mod surfaces;
mod ui;
