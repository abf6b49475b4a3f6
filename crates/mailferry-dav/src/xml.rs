//! WebDAV XML: the request bodies we send and the multistatus answers we read (RFC 4918
//! §14.16, RFC 6578 §6.4). Namespaces are matched by URI, never by prefix: servers use
//! `D:`, `ns0:` or none at all.

use roxmltree::{Document, Node};

pub const DAV: &str = "DAV:";
pub const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
pub const CARDDAV: &str = "urn:ietf:params:xml:ns:carddav";
pub const APPLE: &str = "http://apple.com/ns/ical/";
pub const CALSERVER: &str = "http://calendarserver.org/ns/";

/// The namespace declarations every body we send carries.
pub(crate) const NAMESPACES: &str = r#"xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CR="urn:ietf:params:xml:ns:carddav" xmlns:A="http://apple.com/ns/ical/" xmlns:CS="http://calendarserver.org/ns/""#;

/// A property we ask for or set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prop {
    ResourceType,
    DisplayName,
    CalendarColor,
    CalendarDescription,
    AddressBookDescription,
    SupportedCalendarComponentSet,
    GetCtag,
    SyncToken,
    GetEtag,
    GetContentType,
    CurrentUserPrincipal,
    CalendarHomeSet,
    AddressBookHomeSet,
}

impl Prop {
    /// (namespace, local name, prefix in our bodies).
    pub fn name(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Prop::ResourceType => (DAV, "resourcetype", "D"),
            Prop::DisplayName => (DAV, "displayname", "D"),
            Prop::CalendarColor => (APPLE, "calendar-color", "A"),
            Prop::CalendarDescription => (CALDAV, "calendar-description", "C"),
            Prop::AddressBookDescription => (CARDDAV, "addressbook-description", "CR"),
            Prop::SupportedCalendarComponentSet => {
                (CALDAV, "supported-calendar-component-set", "C")
            }
            Prop::GetCtag => (CALSERVER, "getctag", "CS"),
            Prop::SyncToken => (DAV, "sync-token", "D"),
            Prop::GetEtag => (DAV, "getetag", "D"),
            Prop::GetContentType => (DAV, "getcontenttype", "D"),
            Prop::CurrentUserPrincipal => (DAV, "current-user-principal", "D"),
            Prop::CalendarHomeSet => (CALDAV, "calendar-home-set", "C"),
            Prop::AddressBookHomeSet => (CARDDAV, "addressbook-home-set", "CR"),
        }
    }

    /// `<D:displayname/>`.
    pub(crate) fn empty_element(self) -> String {
        let (_, local, prefix) = self.name();
        format!("<{prefix}:{local}/>")
    }
}

/// `&`, `<`, `>`, `"` escaped for element text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// One property in an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PropValue {
    pub namespace: String,
    pub name: String,
    /// The status of its propstat (200, 404, ...).
    pub status: u16,
    /// Its text content (trimmed), for simple properties.
    pub text: String,
    /// `<D:href>` children, for href-valued properties.
    pub hrefs: Vec<String>,
    /// Its child elements as (namespace, name), e.g. a resourcetype's kinds.
    pub children: Vec<(String, String)>,
    /// The `name` attributes of `<C:comp>` children (supported-calendar-component-set).
    pub components: Vec<String>,
}

/// One `<D:response>` of a multistatus.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiResponse {
    pub href: String,
    /// A response-level `<D:status>` (sync-collection uses 404 for removed members).
    pub status: Option<u16>,
    /// That status as the server wrote it, without the protocol: `412 Precondition Failed`.
    pub status_line: Option<String>,
    pub props: Vec<PropValue>,
    /// The names of the conditions in a `<D:error>` (RFC 4918 §16), e.g. `valid-calendar-data`.
    pub error: Vec<String>,
    /// `<D:responsedescription>`: the server's words.
    pub description: Option<String>,
}

impl MultiResponse {
    /// A property that came back with 200.
    pub fn prop(&self, prop: Prop) -> Option<&PropValue> {
        let (namespace, name, _) = prop.name();
        self.props
            .iter()
            .find(|p| p.status == 200 && p.namespace == namespace && p.name == name)
    }

    /// A property's text, when it is there and not empty.
    pub fn text(&self, prop: Prop) -> Option<String> {
        self.prop(prop)
            .map(|p| p.text.clone())
            .filter(|t| !t.is_empty())
    }

    /// Whether the resourcetype has this child.
    pub fn is(&self, namespace: &str, name: &str) -> bool {
        self.prop(Prop::ResourceType).is_some_and(|p| {
            p.children
                .iter()
                .any(|(ns, n)| ns == namespace && n == name)
        })
    }

    /// The text of a `calendar-data` or `address-data` property.
    pub fn data(&self) -> Option<&str> {
        self.props
            .iter()
            .find(|p| {
                p.status == 200
                    && ((p.namespace == CALDAV && p.name == "calendar-data")
                        || (p.namespace == CARDDAV && p.name == "address-data"))
            })
            .map(|p| p.text.as_str())
    }
}

/// A whole multistatus.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiStatus {
    pub responses: Vec<MultiResponse>,
    /// The top-level `<D:sync-token>` of a sync-collection answer.
    pub sync_token: Option<String>,
}

/// Reads a multistatus body; `Err` says what is wrong with it.
pub fn parse_multistatus(body: &str) -> Result<MultiStatus, String> {
    let document = Document::parse(body).map_err(|e| format!("not XML: {e}"))?;
    let root = document.root_element();
    if !is(root, DAV, "multistatus") {
        return Err(format!(
            "expected a DAV:multistatus, got `{}`",
            root.tag_name().name()
        ));
    }
    let mut out = MultiStatus::default();
    for child in root.children().filter(Node::is_element) {
        if is(child, DAV, "sync-token") {
            out.sync_token = Some(text_of(child)).filter(|t| !t.is_empty());
        } else if is(child, DAV, "response") {
            out.responses.push(parse_response(child));
        }
    }
    Ok(out)
}

fn parse_response(node: Node<'_, '_>) -> MultiResponse {
    let mut response = MultiResponse::default();
    for child in node.children().filter(Node::is_element) {
        if is(child, DAV, "href") && response.href.is_empty() {
            response.href = text_of(child);
        } else if is(child, DAV, "status") {
            let line = text_of(child);
            response.status = parse_status_line(&line);
            response.status_line = line
                .split_once(' ')
                .map(|(_, rest)| rest.trim().to_string())
                .filter(|rest| !rest.is_empty());
        } else if is(child, DAV, "error") {
            response.error = child
                .children()
                .filter(Node::is_element)
                .map(|n| n.tag_name().name().to_string())
                .collect();
        } else if is(child, DAV, "responsedescription") {
            response.description = Some(text_of(child)).filter(|t| !t.is_empty());
        } else if is(child, DAV, "propstat") {
            let status = child
                .children()
                .find(|n| is(*n, DAV, "status"))
                .and_then(|n| parse_status_line(&text_of(n)))
                .unwrap_or(200);
            for prop in child.children().filter(|n| is(*n, DAV, "prop")) {
                for value in prop.children().filter(Node::is_element) {
                    response.props.push(prop_value(value, status));
                }
            }
        }
    }
    response
}

fn prop_value(node: Node<'_, '_>, status: u16) -> PropValue {
    let mut value = PropValue {
        namespace: node.tag_name().namespace().unwrap_or("").to_string(),
        name: node.tag_name().name().to_string(),
        status,
        ..PropValue::default()
    };
    for child in node.children().filter(Node::is_element) {
        if is(child, DAV, "href") {
            value.hrefs.push(text_of(child));
        }
        if is(child, CALDAV, "comp") {
            if let Some(name) = child.attribute("name") {
                value.components.push(name.to_ascii_uppercase());
            }
        }
        value.children.push((
            child.tag_name().namespace().unwrap_or("").to_string(),
            child.tag_name().name().to_string(),
        ));
    }
    if value.children.is_empty() {
        // calendar-data keeps its inner whitespace (line ends matter); others are trimmed.
        let raw: String = node
            .children()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect();
        value.text = if value.name == "calendar-data" || value.name == "address-data" {
            raw
        } else {
            raw.trim().to_string()
        };
    }
    value
}

fn is(node: Node<'_, '_>, namespace: &str, name: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == name
        && node.tag_name().namespace() == Some(namespace)
}

fn text_of(node: Node<'_, '_>) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<String>()
        .trim()
        .to_string()
}

/// `HTTP/1.1 404 Not Found` → 404.
fn parse_status_line(line: &str) -> Option<u16> {
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The conditions of a `DAV:error` body as (namespace, name), e.g. (CalDAV, `no-uid-conflict`).
pub fn error_conditions(body: &str) -> Vec<(String, String)> {
    let Ok(document) = Document::parse(body) else {
        return Vec::new();
    };
    let root = document.root_element();
    if !is(root, DAV, "error") {
        return Vec::new();
    }
    root.children()
        .filter(Node::is_element)
        .map(|n| {
            (
                n.tag_name().namespace().unwrap_or("").to_string(),
                n.tag_name().name().to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // As Xandikos 0.2.8 answers (ns0/ns1 prefixes, propstat with 404).
    const XANDIKOS: &str = r#"<ns0:multistatus xmlns:ns0="DAV:" xmlns:ns1="urn:ietf:params:xml:ns:caldav" xmlns:ns2="urn:ietf:params:xml:ns:carddav"><ns0:response><ns0:href>/alice/calendars/team%20paris/</ns0:href><ns0:propstat><ns0:status>HTTP/1.1 200 OK</ns0:status><ns0:prop><ns0:resourcetype><ns0:collection/><ns1:calendar/></ns0:resourcetype><ns0:displayname>Équipe &amp; Co</ns0:displayname><ns1:supported-calendar-component-set><ns1:comp name="VEVENT"/><ns1:comp name="VTODO"/></ns1:supported-calendar-component-set></ns0:prop></ns0:propstat><ns0:propstat><ns0:status>HTTP/1.1 404 Not Found</ns0:status><ns0:prop><ns2:addressbook-description/></ns0:prop></ns0:propstat></ns0:response></ns0:multistatus>"#;

    #[test]
    fn reads_any_prefix_and_propstat_statuses() {
        let ms = parse_multistatus(XANDIKOS).unwrap();
        let r = &ms.responses[0];
        assert_eq!(r.href, "/alice/calendars/team%20paris/");
        assert!(r.is(CALDAV, "calendar"));
        assert!(!r.is(CARDDAV, "addressbook"));
        assert_eq!(r.text(Prop::DisplayName).as_deref(), Some("Équipe & Co"));
        assert_eq!(
            r.prop(Prop::SupportedCalendarComponentSet)
                .unwrap()
                .components,
            vec!["VEVENT", "VTODO"]
        );
        assert!(r.prop(Prop::AddressBookDescription).is_none());
    }

    // RFC 6578 §6.4 example, shortened: a changed member and a removed one.
    #[test]
    fn reads_a_sync_collection_answer() {
        let body = r#"<?xml version="1.0" encoding="utf-8" ?>
   <d:multistatus xmlns:d="DAV:">
     <d:response>
       <d:href>http://example.com/home/cyrusdaboo/calendar/test.ics</d:href>
       <d:propstat><d:prop><d:getetag>"00001-abcd1"</d:getetag></d:prop>
         <d:status>HTTP/1.1 200 OK</d:status></d:propstat>
     </d:response>
     <d:response>
       <d:href>http://example.com/home/cyrusdaboo/calendar/old.ics</d:href>
       <d:status>HTTP/1.1 404 Not Found</d:status>
     </d:response>
     <d:sync-token>http://example.com/ns/sync/1238</d:sync-token>
   </d:multistatus>"#;
        let ms = parse_multistatus(body).unwrap();
        assert_eq!(
            ms.sync_token.as_deref(),
            Some("http://example.com/ns/sync/1238")
        );
        assert_eq!(ms.responses.len(), 2);
        assert_eq!(
            ms.responses[0].text(Prop::GetEtag).as_deref(),
            Some("\"00001-abcd1\"")
        );
        assert_eq!(ms.responses[1].status, Some(404));
    }

    #[test]
    fn calendar_data_keeps_its_lines() {
        let body = "<multistatus xmlns=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><response><href>/a.ics</href><propstat><prop><C:calendar-data>BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n</C:calendar-data></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>";
        let ms = parse_multistatus(body).unwrap();
        // XML parsers turn CRLF into LF (XML 1.0 §2.11); callers put the CR back.
        assert_eq!(
            ms.responses[0]
                .data()
                .map(|d| d.replace('\r', ""))
                .as_deref(),
            Some("BEGIN:VCALENDAR\nEND:VCALENDAR\n")
        );
    }

    #[test]
    fn bad_bodies_are_errors_not_panics() {
        assert!(parse_multistatus("").is_err());
        assert!(parse_multistatus("<html/>").is_err());
        assert!(parse_multistatus("<a:multistatus xmlns:a=\"other\"/>").is_err());
        assert_eq!(
            error_conditions(r#"<D:error xmlns:D="DAV:"><D:valid-sync-token/></D:error>"#),
            vec![(DAV.to_string(), "valid-sync-token".to_string())]
        );
        assert_eq!(escape("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
    }

    // Xandikos 0.2.8's answer to a PUT of an event with a control character in SUMMARY.
    #[test]
    fn reads_a_refusal_inside_a_multistatus() {
        let body = r#"<ns0:multistatus xmlns:ns0="DAV:" xmlns:ns1="urn:ietf:params:xml:ns:caldav"><ns0:response><ns0:href>http%3A//127.0.0.1%3A15502/alice/calendars/calendar/ctl.ics</ns0:href><ns0:status>HTTP/1.1 412 Precondition Failed</ns0:status><ns0:error><ns1:valid-calendar-data /></ns0:error><ns0:responsedescription>Not a valid calendar file: Invalid character b'\\x01' in field SUMMARY</ns0:responsedescription></ns0:response></ns0:multistatus>"#;
        let r = &parse_multistatus(body).unwrap().responses[0];
        assert_eq!(r.status, Some(412));
        assert_eq!(r.status_line.as_deref(), Some("412 Precondition Failed"));
        assert_eq!(r.error, vec!["valid-calendar-data"]);
        assert_eq!(
            r.description.as_deref(),
            Some("Not a valid calendar file: Invalid character b'\\\\x01' in field SUMMARY")
        );
    }
}
