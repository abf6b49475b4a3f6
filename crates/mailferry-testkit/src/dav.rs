//! Real CalDAV/CardDAV servers on loopback, one per test, stopped on drop: Radicale 3 with
//! Basic authentication (htpasswd) and Xandikos (git-backed, no authentication), both from
//! Debian's packages, with the recipes of `/work/shared/test-servers/README.md`.
//!
//! [`DavServer`] also speaks just enough HTTP/1.1 of its own (std `TcpStream`, no client
//! library) to create collections, put, get, delete and list objects, so that tests load
//! and check servers independently of `mailferry-dav`.
//!
//! ```no_run
//! use mailferry_testkit::{DavServer, groupware_corpus};
//!
//! let radicale = DavServer::radicale()?;
//! radicale.fill(&groupware_corpus())?;
//! println!("{}", radicale.account_url()); // http://alice@127.0.0.1:PORT/
//! # Ok::<(), mailferry_testkit::TestkitError>(())
//! ```

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

use crate::error::TestkitError;
use crate::groupware::{GroupwareCorpus, GroupwareKind};
use crate::sandbox::{free_port, io_error, tail_lines};

/// The one user of every DAV server.
pub const DAV_USER: &str = "alice";
/// Radicale's password for [`DAV_USER`] (Xandikos takes any).
pub const DAV_PASSWORD: &str = "alicepw";

const ROOT_DIR: &str = "/tmp/mailferry-testkit";
const KEEP_ENV: &str = "MAILFERRY_KEEP_SERVERS";
/// How long a server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Per request of the built-in client.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DavProduct {
    Radicale,
    Xandikos,
}

impl DavProduct {
    fn program(self) -> &'static str {
        match self {
            DavProduct::Radicale => "radicale",
            DavProduct::Xandikos => "xandikos",
        }
    }
}

/// A running Radicale or Xandikos on 127.0.0.1 with the user [`DAV_USER`].
#[derive(Debug)]
pub struct DavServer {
    product: DavProduct,
    child: Child,
    temp_dir: Option<tempfile::TempDir>,
    dir: PathBuf,
    port: u16,
    /// Who the built-in client logs in as ([`DavServer::log_in_as`]).
    user: String,
    password: String,
}

/// One answer of the built-in client.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl DavServer {
    /// Radicale 3 with htpasswd authentication ([`DAV_USER`] / [`DAV_PASSWORD`]); the
    /// principal is `/alice/`, collections live directly under it.
    pub fn radicale() -> Result<Self, TestkitError> {
        Self::start(DavProduct::Radicale, &[])
    }

    /// Radicale with more users beside [`DAV_USER`], each with a principal `/USER/` of its
    /// own; [`DavServer::log_in_as`] makes the built-in client one of them.
    pub fn radicale_with_users(users: &[(&str, &str)]) -> Result<Self, TestkitError> {
        Self::start(DavProduct::Radicale, users)
    }

    /// Xandikos with `--defaults` (it makes `/alice/calendars/calendar/` and
    /// `/alice/contacts/addressbook/`); no authentication at all.
    pub fn xandikos() -> Result<Self, TestkitError> {
        Self::start(DavProduct::Xandikos, &[])
    }

    fn start(product: DavProduct, users: &[(&str, &str)]) -> Result<Self, TestkitError> {
        let program = Path::new("/usr/bin").join(product.program());
        if !program.is_file() {
            return Err(TestkitError::DavNotInstalled {
                program: product.program(),
            });
        }
        let root = Path::new(ROOT_DIR);
        fs::create_dir_all(root).map_err(|source| io_error("create", root, source))?;
        let temp_dir = tempfile::Builder::new()
            .prefix(&format!("{}-", product.program()))
            .tempdir_in(root)
            .map_err(|source| io_error("create a directory in", root, source))?;
        let dir = temp_dir.path().to_path_buf();
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port()?;
            let log = dir.join("server.log");
            let log_file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(|source| io_error("create", &log, source))?;
            let log_err = log_file
                .try_clone()
                .map_err(|source| io_error("open", &log, source))?;
            let mut command = match product {
                DavProduct::Radicale => {
                    let config = write_radicale_config(&dir, port, users)?;
                    let mut command = Command::new(&program);
                    command.arg("--config").arg(config);
                    command
                }
                DavProduct::Xandikos => {
                    let data = dir.join("data");
                    let mut command = Command::new(&program);
                    command
                        .arg("-d")
                        .arg(&data)
                        .arg("--defaults")
                        .args(["--current-user-principal", &format!("/{DAV_USER}/")])
                        .args(["-l", "127.0.0.1", "-p", &port.to_string()]);
                    command
                }
            };
            let child = command
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log_file)
                .stderr(log_err)
                .spawn()
                .map_err(|error| TestkitError::Command {
                    command: product.program().to_string(),
                    detail: error.to_string(),
                })?;
            let mut server = DavServer {
                product,
                child,
                temp_dir: None,
                dir: dir.clone(),
                port,
                user: DAV_USER.to_string(),
                password: DAV_PASSWORD.to_string(),
            };
            match server.wait_ready() {
                Ok(()) => {
                    server.temp_dir = Some(temp_dir);
                    return Ok(server);
                }
                Err(error) => {
                    let busy = tail_lines(&log, 20).contains("Address already in use");
                    drop(server);
                    if !busy {
                        return Err(error);
                    }
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| TestkitError::DavStart {
            program: product.program(),
            reason: "no free port".into(),
            log_tail: String::new(),
        }))
    }

    fn wait_ready(&mut self) -> Result<(), TestkitError> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.start_error(format!("it exited at once ({status})")));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(self.start_error(format!(
                    "no connection on port {} within {} s",
                    self.port,
                    START_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn start_error(&self, reason: String) -> TestkitError {
        TestkitError::DavStart {
            program: self.product.program(),
            reason,
            log_tail: tail_lines(&self.dir.join("server.log"), 30),
        }
    }

    pub fn product(&self) -> DavProduct {
        self.product
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The instance directory (config, users, collections or git data, `server.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// `http://alice@127.0.0.1:PORT/`, as `mailferry migrate --from` takes it.
    pub fn account_url(&self) -> String {
        format!("http://{}@127.0.0.1:{}/", self.user, self.port)
    }

    /// From now on the built-in client logs in as `user` (one of
    /// [`DavServer::radicale_with_users`]), and the homes are that user's. Xandikos has the
    /// one principal `/alice/` and takes any login.
    pub fn log_in_as(&mut self, user: &str, password: &str) {
        self.user = user.to_string();
        self.password = password.to_string();
    }

    /// Where new calendars go: `/alice/` (Radicale), `/alice/calendars/` (Xandikos).
    pub fn calendar_home(&self) -> String {
        match self.product {
            DavProduct::Radicale => format!("/{}/", self.user),
            DavProduct::Xandikos => format!("/{DAV_USER}/calendars/"),
        }
    }

    /// Where new address books go: `/alice/` (Radicale), `/alice/contacts/` (Xandikos).
    pub fn addressbook_home(&self) -> String {
        match self.product {
            DavProduct::Radicale => format!("/{}/", self.user),
            DavProduct::Xandikos => format!("/{DAV_USER}/contacts/"),
        }
    }

    /// The path of a collection named `segment` of this kind (segment percent-encoded).
    pub fn collection_path(&self, kind: GroupwareKind, segment: &str) -> String {
        let home = match kind {
            GroupwareKind::Calendar => self.calendar_home(),
            GroupwareKind::AddressBook => self.addressbook_home(),
        };
        format!("{home}{}/", encode_path_segment(segment))
    }

    /// One request with the built-in client (Basic auth as [`DAV_USER`], or whom
    /// [`DavServer::log_in_as`] named).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpAnswer, TestkitError> {
        let addr = format!("127.0.0.1:{}", self.port);
        let failed = |doing: &str, error: std::io::Error| TestkitError::Command {
            command: format!("{method} {path} on {addr}"),
            detail: format!("{doing}: {error}"),
        };
        let mut stream = TcpStream::connect(&addr).map_err(|e| failed("connect", e))?;
        let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
        let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.user, self.password));
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {credentials}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body))
            .map_err(|e| failed("send", e))?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .map_err(|e| failed("read the answer", e))?;
        parse_answer(&raw).ok_or_else(|| TestkitError::Command {
            command: format!("{method} {path} on {addr}"),
            detail: format!(
                "unreadable answer: {}",
                String::from_utf8_lossy(&raw[..raw.len().min(200)])
            ),
        })
    }

    fn expect(
        &self,
        answer: HttpAnswer,
        what: &str,
        ok: &[u16],
    ) -> Result<HttpAnswer, TestkitError> {
        if ok.contains(&answer.status) {
            Ok(answer)
        } else {
            Err(TestkitError::DavRefused {
                request: what.to_string(),
                status: answer.status,
                body: answer.body.chars().take(500).collect(),
            })
        }
    }

    /// Creates a calendar or address book with its properties (MKCALENDAR / extended MKCOL).
    pub fn make_collection(
        &self,
        kind: GroupwareKind,
        segment: &str,
        display_name: &str,
        color: Option<&str>,
        description: Option<&str>,
        components: &[&str],
    ) -> Result<String, TestkitError> {
        let path = self.collection_path(kind, segment);
        let mut props = format!(
            "<D:displayname>{}</D:displayname>",
            xml_escape(display_name)
        );
        let (method, body) = match kind {
            GroupwareKind::Calendar => {
                if let Some(color) = color {
                    let _ = write!(
                        props,
                        "<A:calendar-color>{}</A:calendar-color>",
                        xml_escape(color)
                    );
                }
                if let Some(description) = description {
                    let _ = write!(
                        props,
                        "<C:calendar-description>{}</C:calendar-description>",
                        xml_escape(description)
                    );
                }
                if !components.is_empty() {
                    props.push_str("<C:supported-calendar-component-set>");
                    for component in components {
                        let _ = write!(props, r#"<C:comp name="{component}"/>"#);
                    }
                    props.push_str("</C:supported-calendar-component-set>");
                }
                (
                    "MKCALENDAR",
                    format!(
                        r#"<?xml version="1.0" encoding="utf-8"?><C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:A="http://apple.com/ns/ical/"><D:set><D:prop>{props}</D:prop></D:set></C:mkcalendar>"#
                    ),
                )
            }
            GroupwareKind::AddressBook => {
                if let Some(description) = description {
                    let _ = write!(
                        props,
                        "<CR:addressbook-description>{}</CR:addressbook-description>",
                        xml_escape(description)
                    );
                }
                (
                    "MKCOL",
                    format!(
                        r#"<?xml version="1.0" encoding="utf-8"?><D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>{props}</D:prop></D:set></D:mkcol>"#
                    ),
                )
            }
        };
        let answer = self.request(
            method,
            &path,
            &[("Content-Type", "application/xml; charset=utf-8")],
            body.as_bytes(),
        )?;
        self.expect(answer, &format!("{method} {path}"), &[200, 201])?;
        // Xandikos keeps no colour from MKCALENDAR; PROPPATCH it so the source has one.
        if let (DavProduct::Xandikos, Some(color)) = (self.product, color) {
            let patch = format!(
                r#"<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:A="http://apple.com/ns/ical/"><D:set><D:prop><A:calendar-color>{}</A:calendar-color></D:prop></D:set></D:propertyupdate>"#,
                xml_escape(color)
            );
            let answer = self.request(
                "PROPPATCH",
                &path,
                &[("Content-Type", "application/xml; charset=utf-8")],
                patch.as_bytes(),
            )?;
            self.expect(answer, &format!("PROPPATCH {path}"), &[200, 207])?;
        }
        Ok(path)
    }

    /// PUT an object (overwriting); returns its ETag if the server gave one.
    pub fn put(
        &self,
        path: &str,
        kind: GroupwareKind,
        data: &str,
    ) -> Result<Option<String>, TestkitError> {
        let content_type = match kind {
            GroupwareKind::Calendar => "text/calendar; charset=utf-8",
            GroupwareKind::AddressBook => "text/vcard; charset=utf-8",
        };
        let answer = self.request(
            "PUT",
            path,
            &[("Content-Type", content_type)],
            data.as_bytes(),
        )?;
        let answer = self.expect(answer, &format!("PUT {path}"), &[200, 201, 204])?;
        Ok(answer.header("ETag").map(str::to_string))
    }

    /// GET an object; `None` if it is not there.
    pub fn get(&self, path: &str) -> Result<Option<String>, TestkitError> {
        let answer = self.request("GET", path, &[], b"")?;
        if answer.status == 404 {
            return Ok(None);
        }
        Ok(Some(
            self.expect(answer, &format!("GET {path}"), &[200])?.body,
        ))
    }

    pub fn delete(&self, path: &str) -> Result<(), TestkitError> {
        let answer = self.request("DELETE", path, &[], b"")?;
        self.expect(answer, &format!("DELETE {path}"), &[200, 204])?;
        Ok(())
    }

    /// The hrefs of the objects in a collection (PROPFIND depth 1, collections left out).
    pub fn list(&self, collection: &str) -> Result<Vec<String>, TestkitError> {
        Ok(self
            .members(collection)?
            .into_iter()
            .filter(|h| !h.ends_with('/'))
            .collect())
    }

    /// The hrefs of the collections under a home (the home itself left out).
    pub fn collections(&self, home: &str) -> Result<Vec<String>, TestkitError> {
        Ok(self
            .members(home)?
            .into_iter()
            .filter(|h| h.ends_with('/') && h != home)
            .collect())
    }

    /// Every href a PROPFIND with depth 1 names.
    fn members(&self, path: &str) -> Result<Vec<String>, TestkitError> {
        let body = r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/></D:prop></D:propfind>"#;
        let answer = self.request(
            "PROPFIND",
            path,
            &[
                ("Depth", "1"),
                ("Content-Type", "application/xml; charset=utf-8"),
            ],
            body.as_bytes(),
        )?;
        let answer = self.expect(answer, &format!("PROPFIND {path}"), &[207])?;
        Ok(hrefs(&answer.body))
    }

    /// Creates the corpus's collections and puts its objects; returns how many objects.
    pub fn fill(&self, corpus: &GroupwareCorpus) -> Result<usize, TestkitError> {
        let mut count = 0;
        for collection in &corpus.collections {
            let path = self.make_collection(
                collection.kind,
                collection.segment,
                collection.display_name,
                collection.color,
                collection.description,
                collection.components,
            )?;
            for object in &collection.objects {
                self.put(
                    &format!("{path}{}", object.name),
                    collection.kind,
                    &object.data,
                )?;
                count += 1;
            }
        }
        Ok(count)
    }
}

impl Drop for DavServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var(KEEP_ENV).is_ok_and(|value| value == "1") {
            if let Some(temp_dir) = self.temp_dir.take() {
                let kept = temp_dir.keep();
                eprintln!(
                    "mailferry-testkit: kept {} directory {}",
                    self.product.program(),
                    kept.display()
                );
            }
        }
    }
}

fn write_radicale_config(
    dir: &Path,
    port: u16,
    more_users: &[(&str, &str)],
) -> Result<PathBuf, TestkitError> {
    let users = dir.join("users");
    let mut lines = format!("{DAV_USER}:{DAV_PASSWORD}\n");
    for (user, password) in more_users {
        let _ = writeln!(lines, "{user}:{password}");
    }
    fs::write(&users, lines).map_err(|source| io_error("write", &users, source))?;
    let config = dir.join("config");
    let text = format!(
        "[server]\nhosts = 127.0.0.1:{port}\n\
         [auth]\ntype = htpasswd\nhtpasswd_filename = {users}\nhtpasswd_encryption = plain\n\
         [storage]\nfilesystem_folder = {collections}\n\
         [rights]\ntype = owner_only\n\
         [web]\ntype = none\n",
        users = users.display(),
        collections = dir.join("collections").display(),
    );
    fs::write(&config, text).map_err(|source| io_error("write", &config, source))?;
    Ok(config)
}

/// Status, headers and body of a raw HTTP/1.x answer (Content-Length, chunked, or to EOF).
fn parse_answer(raw: &[u8]) -> Option<HttpAnswer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..line_end])
                    .split(';')
                    .next()?
                    .trim(),
                16,
            )
            .ok()?;
            if size == 0 {
                break;
            }
            let start = line_end + 2;
            out.extend_from_slice(rest.get(start..start + size)?);
            rest = rest.get(start + size + 2..).unwrap_or(&[]);
        }
        body = out;
    }
    Some(HttpAnswer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The `<href>` texts of a multistatus (any namespace prefix), unescaped.
fn hrefs(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(open) = rest.find("href>") {
        let after = &rest[open + 5..];
        let Some(close) = after.find("</") else { break };
        let text = after[..close].trim();
        // `<D:href>` opens with `href>`, its closing tag also contains `href>`: skip those.
        if !rest[..open].ends_with('/') && !text.starts_with('<') {
            out.push(text.replace("&amp;", "&"));
        }
        rest = &after[close..];
        if let Some(next) = rest.find('>') {
            rest = &rest[next + 1..];
        } else {
            break;
        }
    }
    out
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A path segment percent-encoded (space, non-ASCII and reserved characters).
pub fn encode_path_segment(segment: &str) -> String {
    let mut out = String::new();
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_hrefs() {
        let raw = b"HTTP/1.1 207 Multi-Status\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let answer = parse_answer(raw).unwrap();
        assert_eq!(answer.status, 207);
        assert_eq!(answer.body, "hello world");
        let body = "<ns0:multistatus><ns0:response><ns0:href>/a/b%20c/</ns0:href></ns0:response><response><href>/a/x&amp;y.ics</href></response></ns0:multistatus>";
        assert_eq!(hrefs(body), vec!["/a/b%20c/", "/a/x&y.ics"]);
        assert_eq!(encode_path_segment("team paris é"), "team%20paris%20%C3%A9");
    }
}
