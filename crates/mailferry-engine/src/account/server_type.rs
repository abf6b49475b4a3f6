//! The server types an account may name, and what each brings: how its mail is reached,
//! where its calendars and contacts live, how an admin logs in on a user's behalf there, and
//! what this version can move. One table, read by the CLI (`--from-type`, job files), the API,
//! mass-migration lists and the web form alike, so that they accept and refuse the same
//! types (issue 12). Facts and sources per type: `shared/SERVERTYPES.md`.

use std::fmt;

use mailferry_dav::ServerKind;

/// How an account's mail is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mail {
    /// IMAP (TLS on 993, STARTTLS on 143); `default_host` when the server may be left out.
    Imap { default_host: Option<&'static str> },
    /// Not in this version, and why.
    NotYet(&'static str),
}

/// Where an account's calendars, tasks and contacts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Groupware {
    /// Nowhere this version knows of (plain IMAP; Gmail's are behind Google's own API).
    None,
    /// CalDAV/CardDAV, at the product's usual place on the mail host unless given.
    Dav(ServerKind),
    /// Behind EWS or Microsoft Graph, which this version does not speak: only an explicit
    /// CalDAV/CardDAV address brings them.
    NotDav,
}

/// Where an account's filters (Sieve scripts) are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filters {
    /// ManageSieve (RFC 5804), on the mail host's port 4190 unless given.
    ManageSieve,
    /// Somewhere else, and why they are not copied.
    NotManageSieve(&'static str),
}

/// One server type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerType {
    /// As written in lists, flags and the API: lower case.
    pub name: &'static str,
    /// What it migrates, for people.
    pub summary: &'static str,
    pub mail: Mail,
    pub groupware: Groupware,
    pub filters: Filters,
    /// One of PRODUCT.md's list types (the others name a DAV product on an IMAP server).
    pub listed: bool,
}

const fn imap(default_host: Option<&'static str>) -> Mail {
    Mail::Imap { default_host }
}

/// Every type, PRODUCT.md's first.
pub const SERVER_TYPES: &[ServerType] = &[
    ServerType {
        name: "imap",
        summary: "any IMAP server: folders, messages, flags, dates",
        mail: imap(None),
        groupware: Groupware::None,
        filters: Filters::ManageSieve,
        listed: true,
    },
    ServerType {
        name: "zimbra",
        summary: "IMAP, and calendars, tasks and contacts over CalDAV/CardDAV (https://HOST/dav/)",
        mail: imap(None),
        groupware: Groupware::Dav(ServerKind::Zimbra),
        filters: Filters::NotManageSieve("Zimbra keeps filters in its directory, reached over SOAP, not ManageSieve: not copied by this version"),
        listed: true,
    },
    ServerType {
        name: "exchange",
        summary: "IMAP (calendars and contacts over EWS: not yet)",
        mail: imap(None),
        groupware: Groupware::NotDav,
        filters: Filters::NotManageSieve("Exchange keeps inbox rules behind EWS, not ManageSieve: not copied by this version"),
        listed: true,
    },
    ServerType {
        name: "office365",
        summary: "IMAP with an OAuth2 token or app password (calendars and contacts over Microsoft Graph: not yet)",
        mail: imap(Some("outlook.office365.com")),
        groupware: Groupware::NotDav,
        filters: Filters::NotManageSieve("Microsoft 365 keeps inbox rules behind Microsoft Graph, not ManageSieve: not copied by this version"),
        listed: true,
    },
    ServerType {
        name: "gmail",
        summary: "IMAP with an app password (labels as folders)",
        mail: imap(Some("imap.gmail.com")),
        groupware: Groupware::None,
        filters: Filters::NotManageSieve("Gmail keeps filters behind the Gmail API, not ManageSieve: not copied by this version"),
        listed: true,
    },
    ServerType {
        name: "kolab",
        summary: "IMAP, and calendars, tasks and contacts over CalDAV/CardDAV (https://HOST/iRony/)",
        mail: imap(None),
        groupware: Groupware::Dav(ServerKind::Kolab),
        filters: Filters::ManageSieve,
        listed: true,
    },
    ServerType {
        name: "openxchange",
        summary: "IMAP, and calendars, tasks and contacts over CalDAV/CardDAV (https://HOST/servlet/dav/)",
        mail: imap(None),
        groupware: Groupware::Dav(ServerKind::OpenXchange),
        filters: Filters::ManageSieve,
        listed: true,
    },
    ServerType {
        name: "pop3",
        summary: "POP3 (not yet)",
        mail: Mail::NotYet("POP3 accounts are not supported by this version yet"),
        groupware: Groupware::None,
        filters: Filters::NotManageSieve("POP3 accounts have no filters"),
        listed: true,
    },
    ServerType {
        name: "maildir",
        summary: "a Maildir tree (not yet)",
        mail: Mail::NotYet("Maildir trees are not supported by this version yet"),
        groupware: Groupware::None,
        filters: Filters::NotManageSieve("a Maildir tree has no ManageSieve"),
        listed: true,
    },
    ServerType {
        name: "mbox",
        summary: "mbox files (not yet)",
        mail: Mail::NotYet("mbox files are not supported by this version yet"),
        groupware: Groupware::None,
        filters: Filters::NotManageSieve("mbox files have no ManageSieve"),
        listed: true,
    },
    ServerType {
        name: "nextcloud",
        summary: "IMAP, and Nextcloud's calendars and contacts (https://HOST/remote.php/dav/)",
        mail: imap(None),
        groupware: Groupware::Dav(ServerKind::Nextcloud),
        filters: Filters::ManageSieve,
        listed: false,
    },
    ServerType {
        name: "sogo",
        summary: "IMAP, and SOGo's calendars and contacts (https://HOST/SOGo/dav/)",
        mail: imap(None),
        groupware: Groupware::Dav(ServerKind::Sogo),
        filters: Filters::ManageSieve,
        listed: false,
    },
    ServerType {
        name: "radicale",
        summary: "IMAP, and Radicale's calendars and contacts (https://HOST:5232/)",
        mail: imap(None),
        groupware: Groupware::Dav(ServerKind::Radicale),
        filters: Filters::ManageSieve,
        listed: false,
    },
    ServerType {
        name: "baikal",
        summary: "IMAP, and Baïkal's calendars and contacts (https://HOST/dav.php/)",
        mail: imap(None),
        groupware: Groupware::Dav(ServerKind::Baikal),
        filters: Filters::ManageSieve,
        listed: false,
    },
];

/// Why a type cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    #[error("`{0}` is not a server type: use one of {names}", names = usable_names())]
    Unknown(String),
    #[error("server type `{name}`: {why}")]
    NotYet { name: String, why: &'static str },
}

/// The type called `name` (in any case, spaces around it ignored), if this version can
/// migrate it.
pub fn server_type(name: &str) -> Result<&'static ServerType, TypeError> {
    let wanted = name.trim().to_ascii_lowercase();
    let found = SERVER_TYPES
        .iter()
        .find(|t| t.name == wanted)
        .ok_or_else(|| TypeError::Unknown(name.trim().to_string()))?;
    match found.mail {
        Mail::NotYet(why) => Err(TypeError::NotYet {
            name: name.to_string(),
            why,
        }),
        Mail::Imap { .. } => Ok(found),
    }
}

/// The names of the types this version can migrate, for messages: `imap, zimbra, ...`.
pub fn usable_names() -> String {
    SERVER_TYPES
        .iter()
        .filter(|t| matches!(t.mail, Mail::Imap { .. }))
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Calendars and contacts of this type are behind EWS or Graph, and no CalDAV/CardDAV
/// address was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotDav;

impl fmt::Display for ServerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl ServerType {
    /// The DAV product, for discovery's known paths (generic for types without one).
    pub fn dav_kind(&self) -> ServerKind {
        match self.groupware {
            Groupware::Dav(kind) => kind,
            Groupware::None | Groupware::NotDav => ServerKind::Generic,
        }
    }

    /// The CalDAV/CardDAV address of an account of this type whose mail is on `mail_host`:
    /// the explicit one, else the type's usual one, else none. `Err(NotDav)` when the type's
    /// groupware needs EWS or Graph and no address was given.
    pub fn dav_address(
        &self,
        mail_host: &str,
        explicit: Option<&str>,
    ) -> Result<Option<String>, NotDav> {
        if let Some(explicit) = explicit {
            return Ok(Some(explicit.to_string()));
        }
        match self.groupware {
            Groupware::Dav(kind) => Ok(kind.default_url(mail_host)),
            Groupware::None => Ok(None),
            Groupware::NotDav => Err(NotDav),
        }
    }

    /// The DAV login that stands for an IMAP admin login on `user`'s behalf, where the
    /// product has one: Kolab's iRony takes `admin**user` (SERVERTYPES.md §2).
    pub fn dav_admin_login(&self, admin: &str, user: &str) -> Option<String> {
        match self.groupware {
            Groupware::Dav(ServerKind::Kolab) => Some(format!("{admin}**{user}")),
            _ => None,
        }
    }

    /// The server to use when none is given, if the type has one.
    pub fn default_host(&self) -> Option<&'static str> {
        match self.mail {
            Mail::Imap { default_host } => default_host,
            Mail::NotYet(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_type_of_product_md_is_in_the_table() {
        for name in [
            "imap",
            "zimbra",
            "exchange",
            "office365",
            "gmail",
            "kolab",
            "openxchange",
            "pop3",
            "maildir",
            "mbox",
        ] {
            let t = SERVER_TYPES.iter().find(|t| t.name == name).unwrap();
            assert!(t.listed, "{name}");
        }
        assert!(server_type("kolab").is_ok());
        assert!(matches!(server_type("pop3"), Err(TypeError::NotYet { .. })));
        assert!(matches!(server_type("imapx"), Err(TypeError::Unknown(_))));
        assert_eq!(server_type(" IMAP ").map(|t| t.name), Ok("imap"));
        assert!(matches!(server_type(""), Err(TypeError::Unknown(_))));
        assert!(!usable_names().contains("pop3"));
        assert!(usable_names().contains("nextcloud"));
    }

    #[test]
    fn dav_addresses_logins_and_hosts_come_from_the_type() {
        let kolab = server_type("kolab").unwrap();
        assert_eq!(
            kolab.dav_address("mail.example.org", None),
            Ok(Some("https://mail.example.org/iRony/".into()))
        );
        assert_eq!(
            kolab.dav_admin_login("cyrus-admin", "alice"),
            Some("cyrus-admin**alice".into())
        );
        let imap = server_type("imap").unwrap();
        assert_eq!(imap.dav_address("h", None), Ok(None));
        assert_eq!(
            imap.dav_address("h", Some("https://dav.h/")),
            Ok(Some("https://dav.h/".into()))
        );
        assert_eq!(imap.dav_admin_login("a", "u"), None);
        let exchange = server_type("exchange").unwrap();
        assert_eq!(exchange.dav_address("h", None), Err(NotDav));
        assert_eq!(
            server_type("gmail").unwrap().default_host(),
            Some("imap.gmail.com")
        );
    }
}
