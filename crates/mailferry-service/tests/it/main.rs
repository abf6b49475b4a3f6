//! The service through its REST API, with real Dovecot servers on both sides.

mod api;
mod common;
mod fidelity;
mod filters;
mod groupware;
mod list_check;
mod lists;
mod openapi;
mod surfaces;
mod ui;
mod upgrade;
