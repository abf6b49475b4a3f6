//! A real Dovecot 2.3 on loopback, one directory and one set of free ports per
//! instance, stopped on drop.
//!
//! The recipe is the verified one in `/work/shared/test-servers/README.md`: the master
//! runs as root in the foreground (`dovecot -F`) as our child process, mail is stored as
//! the system user `vmail`, and `base_dir`, `state_dir` and `instance_name` are unique
//! per instance so that any number of instances can run side by side.
//!
//! ```no_run
//! use mailferry_testkit::{Dovecot, Layout, Naming, ALICE};
//!
//! let server = Dovecot::builder()
//!     .layout(Layout::MaildirPlusPlus)
//!     .prefix("INBOX.")
//!     .naming(Naming::Exchange)
//!     .start()?;
//! println!("IMAP on 127.0.0.1:{}", server.imap_port());
//! println!("{}", server.doveadm(&["mailbox", "list", "-u", ALICE])?);
//! # Ok::<(), mailferry_testkit::TestkitError>(())
//! ```

use crate::sandbox::{io_error, run_checked, set_mode, tail_lines};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::corpus::Corpus;
use crate::error::TestkitError;

/// A user with an unlimited quota.
pub const ALICE: &str = "alice";
/// Password of [`ALICE`].
pub const ALICE_PASSWORD: &str = "alicepw";
/// A second user with an unlimited quota.
pub const BOB: &str = "bob";
/// Password of [`BOB`].
pub const BOB_PASSWORD: &str = "bobpw";
/// Dovecot 2.3's capabilities after login without LITERAL+ and MULTIAPPEND: every APPEND
/// waits for the server's `+` before its message, and may be refused before it.
pub const CAPABILITIES_WITHOUT_LITERAL_PLUS: &str = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY STATUS=SIZE SAVEDATE SPECIAL-USE QUOTA";
/// A user whose quota is [`SMALL_QUOTA_BYTES`]: a 30 KB APPEND gets `NO [OVERQUOTA]`.
pub const SMALL: &str = "small";
/// Password of [`SMALL`].
pub const SMALL_PASSWORD: &str = "smallpw";
/// The storage quota of [`SMALL`] (`userdb_quota_rule=*:storage=20K`).
pub const SMALL_QUOTA_BYTES: u64 = 20 * 1024;
/// A spare user, e.g. the source of a migration test.
pub const USER1: &str = "user1";
/// Password of [`USER1`].
pub const USER1_PASSWORD: &str = "user1pw";
/// A spare user, e.g. the target of a migration test.
pub const USER2: &str = "user2";
/// Password of [`USER2`].
pub const USER2_PASSWORD: &str = "user2pw";
/// The master user: `LOGIN alice*master masterpw`, or `AUTHENTICATE PLAIN` with
/// `alice\0master\0masterpw`, logs in as alice.
pub const MASTER_USER: &str = "master";
/// Password of [`MASTER_USER`].
pub const MASTER_PASSWORD: &str = "masterpw";
/// Separates the user to log in as from the master user in `LOGIN` (`alice*master`).
pub const MASTER_SEPARATOR: char = '*';

/// Users every instance has, with their passwords.
const FIXED_USERS: [(&str, &str); 5] = [
    (ALICE, ALICE_PASSWORD),
    (BOB, BOB_PASSWORD),
    (SMALL, SMALL_PASSWORD),
    (USER1, USER1_PASSWORD),
    (USER2, USER2_PASSWORD),
];

/// How long to wait for the IMAP port after spawning the master.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the master gets to exit after SIGTERM before SIGKILL; it usually needs
/// 50–250 ms once its children are signalled too.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Where instance directories live. Not `$TMPDIR`: every parent must be
/// world-searchable, or Dovecot's auth process cannot read the users file.
const ROOT_DIR: &str = "/tmp/mailferry-testkit";
/// Another place for instance directories (the same rule holds for its parents): the
/// benchmark puts both servers on a tmpfs with it, so that the file system's own state
/// does not weigh on one tool's run more than another's.
const ROOT_ENV: &str = "MAILFERRY_DOVECOT_ROOT";
/// Set to `1` to keep each instance's directory after drop.
const KEEP_ENV: &str = "MAILFERRY_KEEP_SERVERS";

/// How folders are stored on disk, which also fixes the hierarchy separator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// `maildir:~/Maildir:LAYOUT=fs`: one directory per level, separator `/`.
    #[default]
    Fs,
    /// `maildir:~/Maildir` (Maildir++): `.Archive.2019`, separator `.`.
    MaildirPlusPlus,
}

impl Layout {
    /// The IMAP hierarchy separator this layout uses.
    pub fn separator(self) -> char {
        match self {
            Layout::Fs => '/',
            Layout::MaildirPlusPlus => '.',
        }
    }

    fn mail_location(self) -> &'static str {
        match self {
            Layout::Fs => "maildir:~/Maildir:LAYOUT=fs",
            Layout::MaildirPlusPlus => "maildir:~/Maildir",
        }
    }
}

/// Names of the special-use folders, all created with `auto = subscribe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Naming {
    /// `Drafts`, `Sent`, `Trash`, `Junk`.
    #[default]
    Standard,
    /// Like Exchange: `Drafts`, `Sent Items`, `Deleted Items`, `Junk E-mail`.
    Exchange,
}

impl Naming {
    /// `(name, special-use attribute)` of the four special folders, name relative to
    /// the namespace prefix.
    pub fn special_folders(self) -> [(&'static str, &'static str); 4] {
        match self {
            Naming::Standard => [
                ("Drafts", "\\Drafts"),
                ("Sent", "\\Sent"),
                ("Trash", "\\Trash"),
                ("Junk", "\\Junk"),
            ],
            Naming::Exchange => [
                ("Drafts", "\\Drafts"),
                ("Sent Items", "\\Sent"),
                ("Deleted Items", "\\Trash"),
                ("Junk E-mail", "\\Junk"),
            ],
        }
    }
}

/// Options for a [`Dovecot`] instance; [`DovecotBuilder::start`] starts it.
#[derive(Debug, Clone, Default)]
pub struct DovecotBuilder {
    layout: Layout,
    prefix: String,
    naming: Naming,
    users: Vec<(String, String)>,
    capabilities: Option<String>,
    metadata: bool,
    sieve_extensions: Option<String>,
}

impl DovecotBuilder {
    /// LAYOUT=fs, empty prefix, standard folder names, the fixed users only.
    pub fn new() -> Self {
        Self::default()
    }

    /// How folders are stored (and so the separator).
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// The namespace prefix: `""` or one ending in the separator, such as `"INBOX."`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Names of the special-use folders.
    pub fn naming(mut self, naming: Naming) -> Self {
        self.naming = naming;
        self
    }

    /// Adds a user besides the fixed ones ([`ALICE`], [`BOB`], [`SMALL`], [`USER1`],
    /// [`USER2`]).
    pub fn user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.users.push((name.into(), password.into()));
        self
    }

    /// Replaces the IMAP capabilities announced after login (`imap_capability`), to play a
    /// server that lacks some: e.g. [`CAPABILITIES_WITHOUT_LITERAL_PLUS`].
    pub fn capabilities(mut self, list: impl Into<String>) -> Self {
        self.capabilities = Some(list.into());
        self
    }

    /// Serves IMAP METADATA (RFC 5464): folder and server annotations, kept in a file per user.
    pub fn metadata(mut self) -> Self {
        self.metadata = true;
        self
    }

    /// Pigeonhole's `sieve_extensions`, e.g. `"+vnd.dovecot.debug"` to offer one more or
    /// `"-editheader"` to offer one less, to play two servers that differ.
    pub fn sieve_extensions(mut self, list: impl Into<String>) -> Self {
        self.sieve_extensions = Some(list.into());
        self
    }

    /// Writes the instance directory and starts Dovecot; returns once the IMAP port
    /// accepts connections.
    pub fn start(self) -> Result<Dovecot, TestkitError> {
        Dovecot::start_with(self)
    }

    fn validate(&self) -> Result<(), TestkitError> {
        let separator = self.layout.separator();
        if !self.prefix.is_empty() && !self.prefix.ends_with(separator) {
            return Err(TestkitError::InvalidOption(format!(
                "namespace prefix `{}` must be empty or end with the separator `{separator}`",
                self.prefix
            )));
        }
        if self.prefix.chars().any(|c| c.is_control() || c == '"') {
            return Err(TestkitError::InvalidOption(format!(
                "namespace prefix `{}` contains a quote or control character",
                self.prefix.escape_debug()
            )));
        }
        let mut seen: HashSet<&str> = FIXED_USERS.iter().map(|(name, _)| *name).collect();
        seen.insert(MASTER_USER);
        for (name, password) in &self.users {
            let bad = |c: char| c == ':' || c == MASTER_SEPARATOR || c.is_control();
            if name.is_empty() || name.chars().any(|c| bad(c) || c.is_whitespace()) {
                return Err(TestkitError::InvalidOption(format!(
                    "user name `{}` must be non-empty without `:`, `*`, spaces or control characters",
                    name.escape_debug()
                )));
            }
            if password.chars().any(|c| c == ':' || c.is_control()) {
                return Err(TestkitError::InvalidOption(format!(
                    "the password of user `{name}` must not contain `:` or control characters"
                )));
            }
            if !seen.insert(name) {
                return Err(TestkitError::InvalidOption(format!(
                    "user `{name}` is defined twice (alice, bob, small, user1, user2 and master always exist)"
                )));
            }
        }
        Ok(())
    }
}

/// The loopback ports of one instance.
#[derive(Debug, Clone, Copy)]
struct Ports {
    imap: u16,
    imaps: u16,
    pop3: u16,
    pop3s: u16,
    lmtp: u16,
    sieve: u16,
}

/// A running Dovecot on 127.0.0.1. Dropping it stops the server (SIGTERM to the master
/// and its children, then wait; usually < 0.3 s) and removes its directory unless
/// `MAILFERRY_KEEP_SERVERS=1`; [`stop_all`] stops several in parallel.
#[derive(Debug)]
pub struct Dovecot {
    options: DovecotBuilder,
    /// `None` once the directory has been handed over to `MAILFERRY_KEEP_SERVERS`.
    temp_dir: Option<tempfile::TempDir>,
    dir: PathBuf,
    ports: Ports,
    child: Option<Child>,
    terminated: bool,
}

impl Dovecot {
    /// A builder; see [`DovecotBuilder`].
    pub fn builder() -> DovecotBuilder {
        DovecotBuilder::new()
    }

    /// Starts an instance with the default options (LAYOUT=fs, no prefix, standard
    /// folder names).
    pub fn start() -> Result<Dovecot, TestkitError> {
        DovecotBuilder::new().start()
    }

    /// IMAP with STARTTLS (plaintext LOGIN is allowed too).
    pub fn imap_port(&self) -> u16 {
        self.ports.imap
    }

    /// IMAP over implicit TLS.
    pub fn imaps_port(&self) -> u16 {
        self.ports.imaps
    }

    /// POP3 with STLS.
    pub fn pop3_port(&self) -> u16 {
        self.ports.pop3
    }

    /// POP3 over implicit TLS.
    pub fn pop3s_port(&self) -> u16 {
        self.ports.pop3s
    }

    /// LMTP; recipients are plain user names, a domain is stripped (`%Ln`).
    pub fn lmtp_port(&self) -> u16 {
        self.ports.lmtp
    }

    /// ManageSieve.
    pub fn sieve_port(&self) -> u16 {
        self.ports.sieve
    }

    /// The instance directory: config, users, certificate, `dovecot.log`, `home/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's self-signed certificate (PEM, CN=localhost, subjectAltName
    /// IP:127.0.0.1 and DNS:localhost); trust this file to verify TLS to 127.0.0.1.
    pub fn cert_pem_path(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// The `dovecot.conf` of this instance.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("dovecot.conf")
    }

    /// Dovecot's own log (`log_path`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("dovecot.log")
    }

    /// The maildir layout.
    pub fn layout(&self) -> Layout {
        self.options.layout
    }

    /// The IMAP hierarchy separator (`/` or `.`).
    pub fn separator(&self) -> char {
        self.options.layout.separator()
    }

    /// The namespace prefix (`""` or e.g. `"INBOX."`).
    pub fn prefix(&self) -> &str {
        &self.options.prefix
    }

    /// The special-folder naming.
    pub fn naming(&self) -> Naming {
        self.options.naming
    }

    /// The server's (UTF-8) name for a folder written with `/` as separator:
    /// `Archive/2019` becomes `INBOX.Archive.2019` with prefix `INBOX.`; `INBOX` stays.
    pub fn mailbox_name(&self, folder: &str) -> String {
        crate::fill::server_mailbox_name(folder, self.separator(), self.prefix())
    }

    /// The server's names of the four special folders, prefix included.
    pub fn special_folder_names(&self) -> Vec<String> {
        self.naming()
            .special_folders()
            .iter()
            .map(|(name, _)| format!("{}{name}", self.prefix()))
            .collect()
    }

    /// Loads `corpus` into `user`'s account over plain IMAP; see [`crate::fill()`].
    pub fn fill(&self, user: &str, password: &str, corpus: &Corpus) -> Result<(), TestkitError> {
        crate::fill::fill(
            "127.0.0.1",
            self.imap_port(),
            user,
            password,
            corpus,
            self.separator(),
            self.prefix(),
        )
    }

    /// Runs `doveadm -c <config> <args>` and returns its standard output, for checks
    /// that do not go through IMAP, e.g. `["mailbox", "list", "-u", "alice"]` or
    /// `["-f", "tab", "mailbox", "status", "-u", "alice", "messages", "INBOX"]`.
    pub fn doveadm(&self, args: &[&str]) -> Result<String, TestkitError> {
        self.run_doveadm(args, None)
    }

    /// Stores a Sieve script for `user` with `doveadm sieve put` (compiled and checked as
    /// managesieved would), made the active one when `active`.
    pub fn put_sieve_script(
        &self,
        user: &str,
        name: &str,
        content: &str,
        active: bool,
    ) -> Result<(), TestkitError> {
        let mut args = vec!["sieve", "put", "-u", user];
        if active {
            args.push("-a");
        }
        args.push(name);
        self.doveadm_with_input(&args, content.as_bytes()).map(drop)
    }

    /// `user`'s Sieve scripts as `(name, active)`, sorted by name (`doveadm sieve list`).
    pub fn sieve_scripts(&self, user: &str) -> Result<Vec<(String, bool)>, TestkitError> {
        let out = self.doveadm(&["sieve", "list", "-u", user])?;
        let mut scripts: Vec<(String, bool)> = out
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| match l.trim_end().strip_suffix("ACTIVE") {
                Some(name) => (name.trim_end().to_string(), true),
                None => (l.trim_end().to_string(), false),
            })
            .collect();
        scripts.sort();
        Ok(scripts)
    }

    /// The content of one of `user`'s Sieve scripts (`doveadm sieve get`).
    pub fn sieve_script(&self, user: &str, name: &str) -> Result<String, TestkitError> {
        // doveadm's formatter puts `sieve script:` before some contents (not all).
        let out = self.doveadm(&["sieve", "get", "-u", user, name])?;
        Ok(out
            .strip_prefix("sieve script:")
            .map(|rest| rest.trim_start_matches([' ', '\n']).to_string())
            .unwrap_or(out))
    }

    /// As [`Dovecot::doveadm`], with `input` on its standard input.
    pub fn doveadm_with_input(&self, args: &[&str], input: &[u8]) -> Result<String, TestkitError> {
        self.run_doveadm(args, Some(input))
    }

    /// `doveadm -c <config> <args>`, fed `input` (else nothing) on its standard input; its
    /// standard output, or an error with its standard error (else output).
    fn run_doveadm(&self, args: &[&str], input: Option<&[u8]>) -> Result<String, TestkitError> {
        use std::io::Write as _;
        let doveadm = find_program("doveadm", &["/usr/bin/doveadm", "/usr/local/bin/doveadm"])
            .ok_or(TestkitError::DovecotNotInstalled)?;
        let io = |source| TestkitError::Io {
            action: "run",
            path: doveadm.clone(),
            source,
        };
        let mut child = Command::new(&doveadm)
            .arg("-c")
            .arg(self.config_path())
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io)?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(input).map_err(io)?;
        }
        let output = child.wait_with_output().map_err(io)?;
        if !output.status.success() {
            let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            if stderr.is_empty() {
                stderr = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            }
            return Err(TestkitError::Doveadm {
                args: args.join(" "),
                status: output.status.to_string(),
                stderr,
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Sets `user`'s storage quota (`None`: unlimited), as an admin raising a full mailbox's
    /// quota. Dovecot reads its passwd-file again when it changes; the next login sees it.
    pub fn set_quota(&self, user: &str, bytes: Option<u64>) -> Result<(), TestkitError> {
        let path = self.dir.join("users");
        let text = fs::read_to_string(&path).map_err(|source| io_error("read", &path, source))?;
        let mut out = String::new();
        for line in text.lines() {
            let name = line.split(':').next().unwrap_or("");
            if name == user {
                let fields: Vec<&str> = line.splitn(8, ':').collect();
                let extra = bytes.map_or(String::new(), |b| {
                    format!("userdb_quota_rule=*:storage={}B", b)
                });
                let _ = writeln!(out, "{}:{}::::::{extra}", fields[0], fields[1]);
            } else {
                let _ = writeln!(out, "{line}");
            }
        }
        // The mtime must change for Dovecot to notice, even within one second.
        thread::sleep(Duration::from_millis(1100));
        write_file(&path, out.as_bytes(), 0o644)
    }

    /// Stops the server and starts it again on the same ports with the same files: what a
    /// reboot or a package upgrade does. Sessions open before are gone.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        let dovecot = find_program("dovecot", &["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"])
            .ok_or(TestkitError::DovecotNotInstalled)?;
        self.stop_and_wait();
        self.terminated = false;
        self.spawn(&dovecot)?;
        self.wait_until_ready()
    }

    /// Stops the server, erases `user`'s whole mail storage (folders, messages, indexes,
    /// subscriptions), and starts it again: as an admin who deletes and recreates an account,
    /// or restores a server without its mail. The folders come back empty (the special ones
    /// are created again at the first login) with new UIDVALIDITYs.
    pub fn wipe_account(&mut self, user: &str) -> Result<(), TestkitError> {
        let dovecot = find_program("dovecot", &["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"])
            .ok_or(TestkitError::DovecotNotInstalled)?;
        self.stop_and_wait();
        let home = self.dir.join("home").join(user);
        if home.exists() {
            fs::remove_dir_all(&home).map_err(|source| io_error("remove", &home, source))?;
        }
        // A new UIDVALIDITY is the creation time in seconds: let the second change, so that
        // a folder recreated at once cannot get its old value back.
        thread::sleep(Duration::from_millis(1100));
        self.terminated = false;
        self.spawn(&dovecot)?;
        self.wait_until_ready()
    }

    fn start_with(options: DovecotBuilder) -> Result<Dovecot, TestkitError> {
        options.validate()?;
        let dovecot = find_program("dovecot", &["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"])
            .ok_or(TestkitError::DovecotNotInstalled)?;
        ensure_vmail()?;

        let root = std::env::var_os(ROOT_ENV)
            .filter(|r| !r.is_empty())
            .map_or_else(|| PathBuf::from(ROOT_DIR), PathBuf::from);
        let root = root.as_path();
        fs::create_dir_all(root).map_err(|source| io_error("create", root, source))?;
        set_mode(root, 0o755)?;
        let temp_dir = tempfile::Builder::new()
            .prefix("dovecot-")
            .tempdir_in(root)
            .map_err(|source| io_error("create a directory in", root, source))?;
        let dir = temp_dir.path().to_path_buf();
        set_mode(&dir, 0o755)?;

        let mut server = Dovecot {
            options,
            temp_dir: Some(temp_dir),
            dir,
            ports: reserve_ports()?,
            child: None,
            terminated: false,
        };
        server.write_files()?;

        // Ports come from the kernel (bind to port 0) and are released just before
        // Dovecot binds them, so another process can take one in between; then the
        // master exits with "Address already in use" and we try fresh ports.
        let mut attempt = 1;
        loop {
            write_file(
                &server.config_path(),
                server.render_config().as_bytes(),
                0o644,
            )?;
            server.spawn(&dovecot)?;
            match server.wait_until_ready() {
                Ok(()) => return Ok(server),
                Err(_) if attempt < 3 && server.log_tail().contains("Address already in use") => {
                    server.stop_and_wait();
                    server.terminated = false;
                    server.ports = reserve_ports()?;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn write_files(&self) -> Result<(), TestkitError> {
        let dir = &self.dir;
        let home = dir.join("home");
        fs::create_dir(&home).map_err(|source| io_error("create", &home, source))?;
        set_mode(&home, 0o755)?;
        run_checked(Command::new("chown").arg("vmail:vmail").arg(&home))?;

        let mut users = String::new();
        for (name, password) in FIXED_USERS {
            let extra = if name == SMALL {
                "userdb_quota_rule=*:storage=20K"
            } else {
                ""
            };
            let _ = writeln!(users, "{name}:{{PLAIN}}{password}::::::{extra}");
        }
        for (name, password) in &self.options.users {
            let _ = writeln!(users, "{name}:{{PLAIN}}{password}::::::");
        }
        write_file(&dir.join("users"), users.as_bytes(), 0o644)?;
        write_file(
            &dir.join("masters"),
            format!("{MASTER_USER}:{{PLAIN}}{MASTER_PASSWORD}\n").as_bytes(),
            0o644,
        )?;

        // Our own openssl config instead of the system one: its `v3_ca` section would
        // make the certificate a CA, which rustls (webpki) refuses as a server
        // certificate. P-256 because it is ten times faster to generate than RSA.
        write_file(&dir.join("openssl.cnf"), OPENSSL_CNF.as_bytes(), 0o644)?;
        run_checked(
            Command::new("openssl")
                .args(["req", "-x509", "-new", "-nodes", "-days", "3650"])
                .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
                .args(["-subj", "/CN=localhost", "-config"])
                .arg(dir.join("openssl.cnf"))
                .arg("-keyout")
                .arg(dir.join("key.pem"))
                .arg("-out")
                .arg(self.cert_pem_path()),
        )?;
        Ok(())
    }

    fn render_config(&self) -> String {
        let d = self.dir.display();
        let instance = self
            .dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let p = self.ports;
        let options = &self.options;
        let mut special = String::new();
        for (name, use_) in options.naming.special_folders() {
            let _ = write!(
                special,
                "  mailbox \"{name}\" {{\n    special_use = {use_}\n    auto = subscribe\n  }}\n"
            );
        }
        format!(
            r#"# Written by mailferry-testkit; recipe: /work/shared/test-servers/README.md
instance_name = mf-{instance}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap pop3 lmtp sieve
listen = 127.0.0.1
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = {MASTER_SEPARATOR}
auth_verbose = yes
# Tests check wrong passwords; the default 2 s penalty would only slow them down.
auth_failure_delay = 0
first_valid_uid = 100
mail_uid = vmail
mail_gid = vmail
# Test data is thrown away; fsync would only slow down APPEND.
mail_fsync = never
mail_location = {location}
mail_plugins = quota
passdb {{
  driver = passwd-file
  args = {d}/masters
  master = yes
  pass = yes
}}
passdb {{
  driver = passwd-file
  args = {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
  default_fields = home={d}/home/%u
}}
namespace inbox {{
  inbox = yes
  prefix = {prefix}
  separator = {separator}
{special}}}
plugin {{
  quota = count:User quota
  quota_vsizes = yes
  quota_rule = *:storage=0
  sieve = file:~/sieve;active=~/.dovecot.sieve
{sieve_extensions}}}
{attributes}
protocol imap {{
  mail_plugins = $mail_plugins imap_quota imap_zlib
{capabilities}{metadata}
  # Tests open many sessions as one user from 127.0.0.1 (default 10).
  mail_max_userip_connections = 100
}}
protocol lmtp {{
  mail_plugins = $mail_plugins sieve
  auth_username_format = %Ln
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    port = {lmtp}
  }}
}}
service managesieve-login {{
  inet_listener sieve {{
    port = {sieve}
  }}
}}
"#,
            location = options.layout.mail_location(),
            capabilities = options
                .capabilities
                .as_ref()
                .map_or(String::new(), |c| format!("  imap_capability = {c}")),
            sieve_extensions = options
                .sieve_extensions
                .as_ref()
                .map_or(String::new(), |e| format!("  sieve_extensions = {e}\n")),
            attributes = if options.metadata {
                "mail_attribute_dict = file:%h/dovecot-attributes"
            } else {
                ""
            },
            metadata = if options.metadata {
                "\n  imap_metadata = yes"
            } else {
                ""
            },
            prefix = options.prefix,
            separator = options.layout.separator(),
            imap = p.imap,
            imaps = p.imaps,
            pop3 = p.pop3,
            pop3s = p.pop3s,
            lmtp = p.lmtp,
            sieve = p.sieve,
        )
    }

    fn spawn(&mut self, dovecot: &Path) -> Result<(), TestkitError> {
        let stderr_path = self.dir.join("stderr.log");
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .map_err(|source| io_error("create", &stderr_path, source))?;
        let stdout = stderr
            .try_clone()
            .map_err(|source| io_error("open", &stderr_path, source))?;
        let child = Command::new(dovecot)
            .arg("-F")
            .arg("-c")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|source| {
                if source.kind() == io::ErrorKind::NotFound {
                    TestkitError::DovecotNotInstalled
                } else {
                    io_error("run", dovecot, source)
                }
            })?;
        self.child = Some(child);
        Ok(())
    }

    /// Polls the IMAP port every 100 ms; fails early if the master exits.
    fn wait_until_ready(&mut self) -> Result<(), TestkitError> {
        let address = SocketAddr::from(([127, 0, 0, 1], self.ports.imap));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let exited = match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => Some(format!("the master process exited ({status})")),
                Some(Err(error)) => Some(format!("cannot watch the master process: {error}")),
                Some(Ok(None)) | None => None,
            };
            if let Some(reason) = exited {
                return Err(self.start_error(reason));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.start_error(format!(
                    "nothing accepted connections on {address} within {} s",
                    START_TIMEOUT.as_secs()
                )));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn start_error(&self, reason: String) -> TestkitError {
        TestkitError::DovecotStart {
            dir: self.dir.clone(),
            reason,
            log_tail: self.log_tail(),
        }
    }

    /// The last lines of `stderr.log` (config errors before logging starts) and
    /// `dovecot.log`.
    fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["stderr.log", "dovecot.log"] {
            let tail = tail_lines(&self.dir.join(name), 30);
            if !tail.is_empty() {
                let _ = writeln!(out, "{name}:\n{tail}");
            }
        }
        if out.is_empty() {
            out.push_str("(both logs are empty)");
        }
        out
    }

    /// Sends SIGTERM to the master and its children, once.
    fn terminate(&mut self) {
        if self.terminated {
            return;
        }
        self.terminated = true;
        if let Some(child) = &self.child {
            let master = child.id();
            let mut pids = vec![master];
            pids.extend(children_of(master));
            send_sigterm(&pids);
        }
    }

    /// SIGTERM, wait up to [`STOP_TIMEOUT`], then SIGKILL.
    fn stop_and_wait(&mut self) {
        self.terminate();
        let Some(mut child) = self.child.take() else {
            return;
        };
        let master = child.id();
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut polls = 0u32;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => {}
            }
            // Login and LMTP processes forked for connections that were still
            // queued when we signalled: each would make the master wait 5 s more.
            polls += 1;
            if polls.is_multiple_of(4) {
                send_sigterm(&children_of(master));
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop_and_wait();
        if std::env::var(KEEP_ENV).is_ok_and(|value| value == "1") {
            if let Some(temp_dir) = self.temp_dir.take() {
                let kept = temp_dir.keep();
                eprintln!(
                    "mailferry-testkit: kept dovecot directory {}",
                    kept.display()
                );
            }
        }
        // Otherwise dropping `temp_dir` removes the directory.
    }
}

/// Stops several instances in parallel: SIGTERM to every master first, then wait
/// for each, instead of signal-and-wait one after the other.
pub fn stop_all(servers: impl IntoIterator<Item = Dovecot>) {
    let mut servers: Vec<Dovecot> = servers.into_iter().collect();
    for server in &mut servers {
        server.terminate();
    }
    drop(servers);
}

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
x509_extensions = server_cert
prompt = no

[dn]
CN = localhost

[server_cert]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = IP:127.0.0.1, DNS:localhost
";

/// Ports handed out in this process; the kernel may return a port again once our
/// probing socket is closed, so two instances starting at once could collide.
static RESERVED_PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

fn reserve_ports() -> Result<Ports, TestkitError> {
    let mut reserved = RESERVED_PORTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let reserved = reserved.get_or_insert_with(HashSet::new);
    // Hold every listener until all six are chosen so they differ from each other.
    let mut listeners = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < 6 {
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(TestkitError::NoFreePort)?;
        let port = listener
            .local_addr()
            .map_err(TestkitError::NoFreePort)?
            .port();
        if reserved.insert(port) {
            ports.push(port);
        }
        listeners.push(listener);
    }
    Ok(Ports {
        imap: ports[0],
        imaps: ports[1],
        pop3: ports[2],
        pop3s: ports[3],
        lmtp: ports[4],
        sieve: ports[5],
    })
}

/// `kill -TERM pids...`: std only offers SIGKILL, and SIGTERM lets Dovecot clean up.
/// The children are signalled along with the master: otherwise a login process that
/// served a connection waits 5 s for a stats handshake before exiting, and the master
/// waits for it.
fn send_sigterm(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Process ids whose parent is `parent`, from `/proc` (empty where there is none).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // /proc/PID/stat: `pid (comm) state ppid ...`; comm may hold spaces and
            // parentheses, so parse after the last `)`.
            fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

/// `name` on `PATH`, else the first of `fallbacks` that exists (`/usr/sbin` is not on
/// every `PATH`).
fn find_program(name: &str, fallbacks: &[&str]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        fallbacks
            .iter()
            .map(PathBuf::from)
            .find(|candidate| candidate.is_file())
    })
}

fn ensure_vmail() -> Result<(), TestkitError> {
    let status = Command::new("id")
        .args(["-u", "vmail"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match status {
        Ok(status) if status.success() => Ok(()),
        _ => Err(TestkitError::VmailMissing),
    }
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TestkitError> {
    fs::write(path, contents).map_err(|source| io_error("write", path, source))?;
    set_mode(path, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_must_end_with_the_separator() {
        let error = DovecotBuilder::new()
            .layout(Layout::MaildirPlusPlus)
            .prefix("INBOX/")
            .validate()
            .unwrap_err();
        assert!(
            error.to_string().contains("must be empty or end with"),
            "{error}"
        );
        DovecotBuilder::new()
            .layout(Layout::MaildirPlusPlus)
            .prefix("INBOX.")
            .validate()
            .expect("INBOX. is a valid Maildir++ prefix");
    }

    #[test]
    fn extra_users_are_checked() {
        for name in ["", "a:b", "a*b", "a b", "alice", "master"] {
            assert!(
                DovecotBuilder::new().user(name, "pw").validate().is_err(),
                "{name:?} should be refused"
            );
        }
        DovecotBuilder::new()
            .user("carol", "carolpw")
            .validate()
            .expect("carol is a valid extra user");
    }

    #[test]
    fn reserved_ports_are_distinct() {
        let a = reserve_ports().expect("free ports");
        let b = reserve_ports().expect("free ports");
        let all: HashSet<u16> = [a, b]
            .iter()
            .flat_map(|p| [p.imap, p.imaps, p.pop3, p.pop3s, p.lmtp, p.sieve])
            .collect();
        assert_eq!(all.len(), 12);
    }
}
