//! The testkit's one error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while starting servers or loading mail.
///
/// Each message says what failed and, where there is one, what to do about it;
/// the underlying cause is kept as the `source`.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// The `dovecot` (or `doveadm`) binary is not on this machine.
    #[error(
        "dovecot is not installed: run scripts/install-test-deps.sh (Debian packages \
         dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-managesieved dovecot-sieve)"
    )]
    DovecotNotInstalled,

    /// Dovecot stores mail as the system user `vmail`, which does not exist.
    #[error(
        "the system user `vmail` does not exist: run scripts/install-test-deps.sh or \
         `useradd --system --user-group --no-create-home --home-dir /nonexistent \
         --shell /usr/sbin/nologin vmail`"
    )]
    VmailMissing,

    /// The PostgreSQL 15 server binaries are not on this machine.
    #[error(
        "PostgreSQL 15 is not installed (`{missing}` not found): run scripts/install-test-deps.sh \
         (Debian package postgresql-15)"
    )]
    PostgresNotInstalled { missing: PathBuf },

    /// PostgreSQL was initialised or started but did not come up.
    #[error(
        "postgres in `{dir}` did not start: {reason}\n\
         --- last lines of its logs ---\n{log_tail}"
    )]
    PostgresStart {
        dir: PathBuf,
        reason: String,
        log_tail: String,
    },

    /// Chromium or its WebDriver is not on this machine.
    #[error(
        "headless Chromium is not installed (`{missing}` not found): run \
         scripts/install-test-deps.sh (Debian packages chromium chromium-driver)"
    )]
    ChromiumNotInstalled { missing: PathBuf },

    /// chromedriver or the browser session did not come up.
    #[error(
        "headless Chromium did not start: {reason}\n\
         --- last lines of chromedriver's log ---\n{log_tail}"
    )]
    BrowserStart { reason: String, log_tail: String },

    /// A WebDriver command failed (an element not found, a page that did not load, ...).
    #[error("the browser could not {command}: {message}")]
    WebDriver { command: String, message: String },

    /// Radicale or Xandikos is not on this machine.
    #[error(
        "`{program}` is not installed: run scripts/install-test-deps.sh (Debian packages \
         radicale xandikos)"
    )]
    DavNotInstalled { program: &'static str },

    /// Radicale or Xandikos did not come up.
    #[error("{program} did not start: {reason}\n--- last lines of its log ---\n{log_tail}")]
    DavStart {
        program: &'static str,
        reason: String,
        log_tail: String,
    },

    /// A request of the testkit's own DAV client got an unexpected answer.
    #[error("the DAV server answered {request} with {status}: {body}")]
    DavRefused {
        request: String,
        status: u16,
        body: String,
    },

    /// A builder option cannot work, e.g. a user name with `:` in it.
    #[error("invalid test server option: {0}")]
    InvalidOption(String),

    /// A file or directory operation failed.
    #[error("cannot {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// No free port could be reserved on 127.0.0.1.
    #[error("cannot reserve a free TCP port on 127.0.0.1")]
    NoFreePort(#[source] io::Error),

    /// A helper program (`openssl`, `chown`, ...) could not be run or failed.
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },

    /// Dovecot was started but never accepted connections, or exited at once.
    #[error(
        "dovecot in `{dir}` did not start: {reason}\n\
         --- last lines of its logs ---\n{log_tail}"
    )]
    DovecotStart {
        dir: PathBuf,
        reason: String,
        log_tail: String,
    },

    /// `doveadm` exited non-zero.
    #[error("`doveadm {args}` failed ({status}): {stderr}")]
    Doveadm {
        args: String,
        status: String,
        stderr: String,
    },

    /// The TCP connection to the IMAP server failed or broke.
    #[error("lost the connection to the IMAP server `{addr}` while {doing}")]
    ImapConnection {
        addr: String,
        doing: String,
        #[source]
        source: io::Error,
    },

    /// The IMAP server answered a command with NO or BAD (or BYE).
    #[error("the IMAP server refused {command}: {response}")]
    ImapRejected { command: String, response: String },

    /// A folder name cannot be expressed on this server.
    #[error("folder `{name}` cannot be created on this server: {reason}")]
    InvalidFolder { name: String, reason: String },
}
