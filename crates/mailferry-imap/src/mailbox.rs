//! Folder commands: NAMESPACE, LIST (with SPECIAL-USE and LIST-STATUS), LSUB, STATUS,
//! CREATE (with USE), SUBSCRIBE, SELECT and EXAMINE (with CONDSTORE and QRESYNC).

use std::fmt;

use crate::error::ImapError;
use crate::fetch::Fetch;
use crate::mutf7;
use crate::response::{Code, FolderStatus, ListItem, Namespaces, StatusKind, Untagged};
use crate::session::{quote, Session};
use crate::uid::{UidSet, UidValidity};

/// The role of a special folder (RFC 6154), found by its flag, not its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpecialUse {
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
    Important,
}

impl SpecialUse {
    pub fn from_attribute(attribute: &str) -> Option<Self> {
        Some(match attribute.to_ascii_lowercase().as_str() {
            "\\all" => SpecialUse::All,
            "\\archive" => SpecialUse::Archive,
            "\\drafts" => SpecialUse::Drafts,
            "\\flagged" => SpecialUse::Flagged,
            "\\junk" => SpecialUse::Junk,
            "\\sent" => SpecialUse::Sent,
            "\\trash" => SpecialUse::Trash,
            "\\important" => SpecialUse::Important,
            _ => return None,
        })
    }

    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
            SpecialUse::Important => "\\Important",
        }
    }
}

impl fmt::Display for SpecialUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.attribute())
    }
}

/// A folder as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// The name exactly as the server sent it; commands use these bytes.
    pub raw_name: Vec<u8>,
    /// The name in UTF-8, for people.
    pub name: String,
    pub delimiter: Option<char>,
    pub attributes: Vec<String>,
    pub special_use: Option<SpecialUse>,
    /// `\Noselect` / `\NonExistent`: a level of the hierarchy that holds no messages.
    pub selectable: bool,
    pub status: Option<FolderStatus>,
}

impl Folder {
    fn from_list(item: ListItem, utf8: bool) -> Self {
        let name = if utf8 {
            String::from_utf8_lossy(&item.raw_name).into_owned()
        } else {
            mutf7::decode_lenient(&item.raw_name)
        };
        let special_use = item
            .attributes
            .iter()
            .find_map(|a| SpecialUse::from_attribute(a));
        let selectable = !item.attributes.iter().any(|a| {
            a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent")
        });
        Folder {
            raw_name: item.raw_name,
            name,
            delimiter: item.delimiter,
            attributes: item.attributes,
            special_use,
            selectable,
            status: None,
        }
    }
}

/// What SELECT or EXAMINE tells about a folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selected {
    /// `None` when the server sent none (RFC 3501 says it must): its UIDs cannot be kept.
    pub uid_validity: Option<UidValidity>,
    pub uid_next: Option<u32>,
    pub exists: u32,
    /// `None` when the folder has no mod-sequences (NOMODSEQ or no CONDSTORE).
    pub highest_modseq: Option<u64>,
    pub permanent_flags: Vec<String>,
    pub read_only: bool,
    /// With QRESYNC: UIDs expunged since the given mod-sequence.
    pub vanished: UidSet,
    /// With QRESYNC: messages whose flags changed since the given mod-sequence.
    pub changed: Vec<Fetch>,
}

/// What a QRESYNC SELECT knows from the last pass (RFC 7162 §3.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resync {
    pub uid_validity: UidValidity,
    pub modseq: u64,
}

impl Session {
    /// NAMESPACE, when the server has it.
    pub async fn namespace(&mut self) -> Result<Option<Namespaces>, ImapError> {
        if !self.capabilities().has("NAMESPACE") {
            return Ok(None);
        }
        let done = self.run_ok("NAMESPACE", b"NAMESPACE\r\n").await?;
        Ok(done.data.into_iter().find_map(|d| match d {
            Untagged::Namespace(ns) => Some(ns),
            _ => None,
        }))
    }

    /// Every folder, with its special use and, when `with_status`, its STATUS: in the LIST
    /// itself under LIST-STATUS (RFC 5819), else one pipelined STATUS per folder.
    pub async fn list_folders(&mut self, with_status: bool) -> Result<Vec<Folder>, ImapError> {
        let caps = self.capabilities().clone();
        let items = self.status_items();
        let mut line = String::from("LIST \"\" \"*\"");
        let mut returns = Vec::new();
        if caps.has("SPECIAL-USE") && caps.has("LIST-EXTENDED") {
            returns.push("SPECIAL-USE".to_string());
        }
        let list_status = with_status && caps.has("LIST-STATUS");
        if list_status {
            returns.push(format!("STATUS ({items})"));
        }
        if !returns.is_empty() {
            line.push_str(&format!(" RETURN ({})", returns.join(" ")));
        }
        line.push_str("\r\n");
        let done = self.run_ok("LIST", line.as_bytes()).await?;
        let utf8 = self.utf8_enabled();
        let mut folders = Vec::new();
        let mut statuses = Vec::new();
        for item in done.data {
            match item {
                Untagged::List(item) => folders.push(Folder::from_list(item, utf8)),
                Untagged::FolderStatus { raw_name, status } => statuses.push((raw_name, status)),
                _ => {}
            }
        }
        if with_status && !list_status {
            let mut tags = Vec::new();
            for folder in folders.iter().filter(|f| f.selectable) {
                let line = [
                    b"STATUS ".as_slice(),
                    &quote(&folder.raw_name),
                    format!(" ({items})\r\n").as_bytes(),
                ]
                .concat();
                tags.push(self.send(&line).await?);
            }
            for tag in tags {
                let done = self.wait(&tag).await?;
                for item in done.data {
                    if let Untagged::FolderStatus { raw_name, status } = item {
                        statuses.push((raw_name, status));
                    }
                }
            }
        }
        for (raw_name, status) in statuses {
            if let Some(folder) = folders
                .iter_mut()
                .find(|f| same_name(&f.raw_name, &raw_name))
            {
                folder.status = Some(status);
            }
        }
        Ok(folders)
    }

    fn status_items(&self) -> String {
        let caps = self.capabilities();
        let mut items = String::from("MESSAGES UIDNEXT UIDVALIDITY UNSEEN");
        if caps.has("CONDSTORE") || caps.has("QRESYNC") {
            items.push_str(" HIGHESTMODSEQ");
        }
        if caps.has("STATUS=SIZE") {
            items.push_str(" SIZE");
        }
        items
    }

    /// STATUS of one folder.
    pub async fn status(&mut self, raw_name: &[u8]) -> Result<FolderStatus, ImapError> {
        let line = [
            b"STATUS ".as_slice(),
            &quote(raw_name),
            format!(" ({})\r\n", self.status_items()).as_bytes(),
        ]
        .concat();
        let done = self.run_ok("STATUS", &line).await?;
        Ok(done
            .data
            .into_iter()
            .find_map(|d| match d {
                Untagged::FolderStatus { status, .. } => Some(status),
                _ => None,
            })
            .unwrap_or_default())
    }

    /// The names of subscribed folders (LSUB).
    pub async fn subscribed(&mut self) -> Result<Vec<Vec<u8>>, ImapError> {
        let done = self.run_ok("LSUB", b"LSUB \"\" \"*\"\r\n").await?;
        Ok(done
            .data
            .into_iter()
            .filter_map(|d| match d {
                Untagged::Lsub(item) => Some(item.raw_name),
                _ => None,
            })
            .collect())
    }

    /// CREATE, marking the special use where the server takes CREATE-SPECIAL-USE (RFC 6154 §3).
    /// A folder that already exists is not an error.
    pub async fn create(
        &mut self,
        raw_name: &[u8],
        special_use: Option<SpecialUse>,
    ) -> Result<(), ImapError> {
        let mut line = [b"CREATE ".as_slice(), &quote(raw_name)].concat();
        if let Some(use_) = special_use.filter(|_| self.capabilities().has("CREATE-SPECIAL-USE")) {
            line.extend_from_slice(format!(" (USE ({use_}))").as_bytes());
        }
        line.extend_from_slice(b"\r\n");
        let done = self.run("CREATE", &line).await?;
        if done.status.kind == StatusKind::Ok
            || matches!(&done.status.code, Some(Code::Other { name, .. }) if name == "ALREADYEXISTS")
        {
            return Ok(());
        }
        // Some servers refuse a special-use they cannot set; create it plainly then.
        if special_use.is_some()
            && matches!(&done.status.code, Some(Code::Other { name, .. }) if name == "USEATTR")
        {
            return Box::pin(self.create(raw_name, None)).await;
        }
        Err(ImapError::Command {
            addr: self.addr().to_string(),
            command: format!("CREATE {}", String::from_utf8_lossy(raw_name)),
            status: Box::new(done.status),
        })
    }

    /// RENAME (RFC 3501 §6.3.5): the folder keeps its messages, UIDs and UIDVALIDITY on
    /// servers that move it (Dovecot, Cyrus); its children move with it.
    pub async fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<(), ImapError> {
        let line = [
            b"RENAME ".as_slice(),
            &quote(from),
            b" ",
            &quote(to),
            b"\r\n",
        ]
        .concat();
        self.run_ok("RENAME", &line).await.map(drop)
    }

    pub async fn subscribe(&mut self, raw_name: &[u8]) -> Result<(), ImapError> {
        let line = [b"SUBSCRIBE ".as_slice(), &quote(raw_name), b"\r\n"].concat();
        self.run_ok("SUBSCRIBE", &line).await.map(drop)
    }

    /// SELECT (or EXAMINE when `read_only`). With `resync` and QRESYNC enabled the server
    /// also reports what vanished and what changed since then, in the same round trip.
    pub async fn select(
        &mut self,
        raw_name: &[u8],
        read_only: bool,
        resync: Option<Resync>,
    ) -> Result<Selected, ImapError> {
        let verb: &[u8] = if read_only { b"EXAMINE " } else { b"SELECT " };
        let mut line = [verb, &quote(raw_name)].concat();
        let qresync = self.enabled().iter().any(|c| c == "QRESYNC");
        let condstore = qresync || self.enabled().iter().any(|c| c == "CONDSTORE");
        match resync {
            Some(r) if qresync => line.extend_from_slice(
                format!(" (QRESYNC ({} {}))", r.uid_validity, r.modseq).as_bytes(),
            ),
            _ if condstore => line.extend_from_slice(b" (CONDSTORE)"),
            _ => {}
        }
        line.extend_from_slice(b"\r\n");
        let name = if read_only { "EXAMINE" } else { "SELECT" };
        let tag = self.send(&line).await?;
        let mut selected = Selected {
            read_only,
            ..Selected::default()
        };
        let mut has_modseq = condstore;
        while let Some(fetch) = self.next_fetch_or_done(&tag).await? {
            selected.changed.push(fetch);
        }
        let done = self.wait_completed(&tag, name, raw_name)?;
        for item in done.data.into_iter().chain(self.take_unsolicited()) {
            match item {
                Untagged::Exists(n) => selected.exists = n,
                // A server may split what vanished over several responses (issue 19).
                Untagged::Vanished { uids, .. } => {
                    selected.vanished = selected.vanished.union(&uids)
                }
                Untagged::Status(status) => match status.code {
                    Some(Code::UidValidity(v)) => selected.uid_validity = UidValidity::new(v),
                    Some(Code::UidNext(n)) => selected.uid_next = Some(n),
                    Some(Code::HighestModSeq(m)) => selected.highest_modseq = Some(m),
                    Some(Code::NoModSeq) => has_modseq = false,
                    Some(Code::PermanentFlags(flags)) => selected.permanent_flags = flags,
                    Some(Code::ReadOnly) => selected.read_only = true,
                    _ => {}
                },
                _ => {}
            }
        }
        if !has_modseq {
            selected.highest_modseq = None;
        }
        if let Some(Code::ReadOnly) = done.status.code {
            selected.read_only = true;
        }
        Ok(selected)
    }
}

fn same_name(a: &[u8], b: &[u8]) -> bool {
    a == b || (a.eq_ignore_ascii_case(b"INBOX") && b.eq_ignore_ascii_case(b"INBOX"))
}
