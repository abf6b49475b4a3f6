//! The requests mailferry sends, as plain values (method, href, headers, body), and the
//! readers of their answers: no I/O here, so every body and parser is unit-tested.
//! [`crate::transport`] sends them.

use crate::xml::{escape, Prop, NAMESPACES};

/// What kind of collection (RFC 4791 calendars, RFC 6352 address books).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CollectionKind {
    Calendar,
    AddressBook,
}

impl CollectionKind {
    /// `calendar` / `addressbook`, for state and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionKind::Calendar => "calendar",
            CollectionKind::AddressBook => "addressbook",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "calendar" => Some(CollectionKind::Calendar),
            "addressbook" => Some(CollectionKind::AddressBook),
            _ => None,
        }
    }

    /// The media type of its objects, for PUT.
    pub fn content_type(self) -> &'static str {
        match self {
            CollectionKind::Calendar => "text/calendar; charset=utf-8",
            CollectionKind::AddressBook => "text/vcard; charset=utf-8",
        }
    }

    /// The file extension of its objects.
    pub fn extension(self) -> &'static str {
        match self {
            CollectionKind::Calendar => "ics",
            CollectionKind::AddressBook => "vcf",
        }
    }

    /// In the admin's words.
    pub fn noun(self) -> &'static str {
        match self {
            CollectionKind::Calendar => "calendar",
            CollectionKind::AddressBook => "address book",
        }
    }
}

/// A precondition on a PUT or DELETE (RFC 7232).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Only if nothing is there yet: never overwrite.
    Absent,
    /// Only if the resource still has this ETag.
    Matches(String),
    None,
}

/// One HTTP request to a DAV server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    /// Path (percent-encoded, as the server spells it) or absolute URL.
    pub href: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<(String, Vec<u8>)>,
}

const XML_TYPE: &str = "application/xml; charset=utf-8";

impl Request {
    fn xml(method: &'static str, href: &str, depth: Option<&str>, body: String) -> Self {
        let mut headers = Vec::new();
        if let Some(depth) = depth {
            headers.push(("Depth", depth.to_string()));
        }
        Request {
            method,
            href: href.to_string(),
            headers,
            body: Some((XML_TYPE.to_string(), body.into_bytes())),
        }
    }

    /// PROPFIND with `Depth` 0 or 1 for these properties.
    pub fn propfind(href: &str, depth: u8, props: &[Prop]) -> Self {
        let props: String = props.iter().map(|p| p.empty_element()).collect();
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><D:propfind {NAMESPACES}><D:prop>{props}</D:prop></D:propfind>"#
        );
        Self::xml("PROPFIND", href, Some(&depth.to_string()), body)
    }

    /// calendar-multiget (RFC 4791 §7.9) or addressbook-multiget (RFC 6352 §8.7): the
    /// ETag and data of the named members of `collection`.
    pub fn multiget(kind: CollectionKind, collection: &str, hrefs: &[String]) -> Self {
        let hrefs: String = hrefs
            .iter()
            .map(|h| format!("<D:href>{}</D:href>", escape(h)))
            .collect();
        let body = match kind {
            CollectionKind::Calendar => format!(
                r#"<?xml version="1.0" encoding="utf-8"?><C:calendar-multiget {NAMESPACES}><D:prop><D:getetag/><C:calendar-data/></D:prop>{hrefs}</C:calendar-multiget>"#
            ),
            CollectionKind::AddressBook => format!(
                r#"<?xml version="1.0" encoding="utf-8"?><CR:addressbook-multiget {NAMESPACES}><D:prop><D:getetag/><CR:address-data/></D:prop>{hrefs}</CR:addressbook-multiget>"#
            ),
        };
        Self::xml("REPORT", collection, Some("1"), body)
    }

    /// sync-collection (RFC 6578 §3.2) since `token` (empty: everything), members only.
    pub fn sync_collection(collection: &str, token: &str) -> Self {
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><D:sync-collection {NAMESPACES}><D:sync-token>{}</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"#,
            escape(token)
        );
        Self::xml("REPORT", collection, None, body)
    }

    /// MKCALENDAR (RFC 4791 §5.3.1) or extended MKCOL (RFC 5689) with its properties set.
    pub fn create_collection(kind: CollectionKind, href: &str, props: &[(Prop, String)]) -> Self {
        let set = props_xml(props);
        match kind {
            CollectionKind::Calendar => Self::xml(
                "MKCALENDAR",
                href,
                None,
                format!(
                    r#"<?xml version="1.0" encoding="utf-8"?><C:mkcalendar {NAMESPACES}><D:set><D:prop>{set}</D:prop></D:set></C:mkcalendar>"#
                ),
            ),
            CollectionKind::AddressBook => Self::xml(
                "MKCOL",
                href,
                None,
                format!(
                    r#"<?xml version="1.0" encoding="utf-8"?><D:mkcol {NAMESPACES}><D:set><D:prop><D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>{set}</D:prop></D:set></D:mkcol>"#
                ),
            ),
        }
    }

    /// PROPPATCH setting these properties.
    pub fn proppatch(href: &str, props: &[(Prop, String)]) -> Self {
        let set = props_xml(props);
        Self::xml(
            "PROPPATCH",
            href,
            None,
            format!(
                r#"<?xml version="1.0" encoding="utf-8"?><D:propertyupdate {NAMESPACES}><D:set><D:prop>{set}</D:prop></D:set></D:propertyupdate>"#
            ),
        )
    }

    pub fn get(href: &str) -> Self {
        Request {
            method: "GET",
            href: href.to_string(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// PUT of one object's data.
    pub fn put(kind: CollectionKind, href: &str, data: &[u8], precondition: &Precondition) -> Self {
        let mut headers = Vec::new();
        match precondition {
            Precondition::Absent => headers.push(("If-None-Match", "*".to_string())),
            Precondition::Matches(etag) => headers.push(("If-Match", etag.clone())),
            Precondition::None => {}
        }
        Request {
            method: "PUT",
            href: href.to_string(),
            headers,
            body: Some((kind.content_type().to_string(), data.to_vec())),
        }
    }

    pub fn delete(href: &str, precondition: &Precondition) -> Self {
        let mut headers = Vec::new();
        if let Precondition::Matches(etag) = precondition {
            headers.push(("If-Match", etag.clone()));
        }
        Request {
            method: "DELETE",
            href: href.to_string(),
            headers,
            body: None,
        }
    }
}

fn props_xml(props: &[(Prop, String)]) -> String {
    props
        .iter()
        .map(|(prop, value)| {
            let (_, local, prefix) = prop.name();
            let inner = match prop {
                Prop::SupportedCalendarComponentSet => value
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(|c| format!(r#"<C:comp name="{}"/>"#, escape(c)))
                    .collect(),
                _ => escape(value),
            };
            format!("<{prefix}:{local}>{inner}</{prefix}:{local}>")
        })
        .collect()
}

/// One HTTP answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The reason phrase (`Not Found`), or the canonical one.
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn etag(&self) -> Option<String> {
        self.header("ETag").map(str::to_string)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `404 Not Found`.
    pub fn status_line(&self) -> String {
        format!("{} {}", self.status, self.reason)
            .trim()
            .to_string()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propfind_asks_for_each_property_with_its_namespace() {
        let r = Request::propfind("/alice/", 1, &[Prop::DisplayName, Prop::CalendarColor]);
        assert_eq!(r.method, "PROPFIND");
        assert_eq!(r.headers, vec![("Depth", "1".to_string())]);
        let body = String::from_utf8(r.body.unwrap().1).unwrap();
        assert!(body.contains("<D:prop><D:displayname/><A:calendar-color/></D:prop>"));
        assert!(body.contains(r#"xmlns:A="http://apple.com/ns/ical/""#));
    }

    #[test]
    fn mkcalendar_sets_names_with_non_ascii_and_markup_escaped() {
        let r = Request::create_collection(
            CollectionKind::Calendar,
            "/alice/team%20paris/",
            &[
                (Prop::DisplayName, "Équipe <Paris> & Co".into()),
                (Prop::SupportedCalendarComponentSet, "VEVENT,VTODO".into()),
            ],
        );
        assert_eq!(r.method, "MKCALENDAR");
        let body = String::from_utf8(r.body.unwrap().1).unwrap();
        assert!(body.contains("<D:displayname>Équipe &lt;Paris&gt; &amp; Co</D:displayname>"));
        assert!(body.contains(
            r#"<C:supported-calendar-component-set><C:comp name="VEVENT"/><C:comp name="VTODO"/></C:supported-calendar-component-set>"#
        ));
        // Parses as XML.
        roxmltree::Document::parse(&body).unwrap();
    }

    #[test]
    fn address_books_are_made_with_extended_mkcol() {
        let r = Request::create_collection(CollectionKind::AddressBook, "/a/b/", &[]);
        assert_eq!(r.method, "MKCOL");
        let body = String::from_utf8(r.body.unwrap().1).unwrap();
        assert!(body.contains("<D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>"));
        roxmltree::Document::parse(&body).unwrap();
    }

    #[test]
    fn put_never_overwrites_unless_told_which_version() {
        let r = Request::put(
            CollectionKind::AddressBook,
            "/a/b/c.vcf",
            b"x",
            &Precondition::Absent,
        );
        assert_eq!(r.headers, vec![("If-None-Match", "*".to_string())]);
        assert_eq!(r.body.as_ref().unwrap().0, "text/vcard; charset=utf-8");
        let r = Request::put(
            CollectionKind::Calendar,
            "/a/b/c.ics",
            b"x",
            &Precondition::Matches("\"e1\"".into()),
        );
        assert_eq!(r.headers, vec![("If-Match", "\"e1\"".to_string())]);
    }

    #[test]
    fn multiget_and_sync_bodies_parse() {
        for r in [
            Request::multiget(CollectionKind::Calendar, "/c/", &["/c/a&b.ics".into()]),
            Request::multiget(CollectionKind::AddressBook, "/c/", &["/c/a.vcf".into()]),
            Request::sync_collection("/c/", "http://x/sync/1?a&b"),
            Request::proppatch("/c/", &[(Prop::CalendarColor, "#FF0000".into())]),
        ] {
            let body = String::from_utf8(r.body.unwrap().1).unwrap();
            roxmltree::Document::parse(&body).unwrap();
        }
    }
}
