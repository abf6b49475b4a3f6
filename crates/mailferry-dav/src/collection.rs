//! Calendars and address books: listing them with their properties, creating them
//! (MKCALENDAR, extended MKCOL) with the same name, colour and description.

use crate::error::DavError;
use crate::request::{CollectionKind, Request};
use crate::transport::{encode_segment, last_segment, normalise_href, DavClient};
use crate::xml::{parse_multistatus, MultiResponse, Prop, CALDAV, CARDDAV};

/// One calendar or address book.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collection {
    /// Normalised href (see [`normalise_href`]).
    pub href: String,
    pub kind: Option<CollectionKind>,
    pub display_name: Option<String>,
    /// `#RRGGBB` or `#RRGGBBAA` (Apple's calendar-color).
    pub color: Option<String>,
    pub description: Option<String>,
    /// Supported components (VEVENT, VTODO, VJOURNAL); empty: not said (all).
    pub components: Vec<String>,
    pub ctag: Option<String>,
    pub sync_token: Option<String>,
}

impl Collection {
    /// The last path segment, decoded.
    pub fn segment(&self) -> String {
        last_segment(&self.href)
    }

    /// What an admin calls it: the display name, else the segment.
    pub fn label(&self) -> String {
        self.display_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| self.segment())
    }

    fn from_response(response: &MultiResponse) -> Self {
        let kind = if response.is(CALDAV, "calendar") {
            Some(CollectionKind::Calendar)
        } else if response.is(CARDDAV, "addressbook") {
            Some(CollectionKind::AddressBook)
        } else {
            None
        };
        let description = match kind {
            Some(CollectionKind::AddressBook) => response.text(Prop::AddressBookDescription),
            _ => response.text(Prop::CalendarDescription),
        };
        Collection {
            href: normalise_href(&response.href),
            kind,
            display_name: response.text(Prop::DisplayName),
            color: response.text(Prop::CalendarColor),
            description,
            components: response
                .prop(Prop::SupportedCalendarComponentSet)
                .map(|p| p.components.clone())
                .unwrap_or_default(),
            ctag: response.text(Prop::GetCtag),
            sync_token: response.text(Prop::SyncToken),
        }
    }

    /// Whether objects of this component may go in (an unsaid set allows all).
    pub fn accepts(&self, component: &str) -> bool {
        self.components.is_empty() || self.components.iter().any(|c| c == component)
    }
}

const COLLECTION_PROPS: &[Prop] = &[
    Prop::ResourceType,
    Prop::DisplayName,
    Prop::CalendarColor,
    Prop::CalendarDescription,
    Prop::AddressBookDescription,
    Prop::SupportedCalendarComponentSet,
    Prop::GetCtag,
    Prop::SyncToken,
];

/// The calendars and address books directly under `home` (other collections, such as
/// scheduling inboxes, are left out).
pub async fn list_collections(client: &DavClient, home: &str) -> Result<Vec<Collection>, DavError> {
    let home = normalise_href(home);
    let request = Request::propfind(&home, 1, COLLECTION_PROPS);
    let response = client.expect_success(&request).await?;
    let ms = parse_multistatus(&response.text()).map_err(|e| client.unreadable(&request, e))?;
    Ok(ms
        .responses
        .iter()
        .map(Collection::from_response)
        .filter(|c| c.kind.is_some() && c.href != home)
        .collect())
}

/// One collection's properties now (its ctag and sync token included).
pub async fn read_collection(client: &DavClient, href: &str) -> Result<Collection, DavError> {
    let request = Request::propfind(href, 0, COLLECTION_PROPS);
    let response = client.expect_success(&request).await?;
    let ms = parse_multistatus(&response.text()).map_err(|e| client.unreadable(&request, e))?;
    ms.responses
        .first()
        .map(Collection::from_response)
        .ok_or_else(|| client.unreadable(&request, "no response in the multistatus".into()))
}

/// Creates a collection like `like` under `home`, named `segment`, and sets its display
/// name, colour and description. Returns it as the server now shows it, and a note for
/// each property the server would not keep (in its words).
pub async fn create_collection(
    client: &DavClient,
    home: &str,
    segment: &str,
    like: &Collection,
) -> Result<(Collection, Vec<String>), DavError> {
    let kind = like.kind.unwrap_or(CollectionKind::Calendar);
    let mut href = normalise_href(home);
    if !href.ends_with('/') {
        href.push('/');
    }
    href.push_str(&encode_segment(segment));
    href.push('/');
    let wanted = wanted_props(like, kind);
    let mut props = wanted.clone();
    if kind == CollectionKind::Calendar && !like.components.is_empty() {
        props.push((
            Prop::SupportedCalendarComponentSet,
            like.components.join(","),
        ));
    }
    let request = Request::create_collection(kind, &href, &props);
    client.expect_success(&request).await?;

    // Servers may create the collection but drop some properties (Xandikos 0.2.8 keeps
    // no colour from MKCALENDAR): set what is missing one by one, and say what stays lost.
    let mut notes = Vec::new();
    let mut now = read_collection(client, &href).await?;
    for (prop, value) in wanted {
        if current(&now, prop).as_deref() == Some(value.as_str()) {
            continue;
        }
        let patch = Request::proppatch(&href, &[(prop, value.clone())]);
        let response = client.send(&patch).await?;
        let refused = match response.status {
            207 => parse_multistatus(&response.text())
                .ok()
                .and_then(|ms| {
                    ms.responses
                        .first()?
                        .props
                        .iter()
                        .find(|p| p.status != 200)
                        .map(|p| p.status)
                })
                .map(|status| format!("{status}")),
            200..=299 => None,
            _ => Some(response.status_line()),
        };
        if let Some(status) = refused {
            notes.push(format!(
                "the target did not keep the {} of {} `{}` (it answered {status})",
                prop_noun(prop),
                kind.noun(),
                like.label()
            ));
        }
    }
    if !notes.is_empty() || now.display_name.is_none() {
        now = read_collection(client, &href).await?;
    }
    if now.kind.is_none() {
        now.kind = Some(kind);
    }
    Ok((now, notes))
}

/// The display name, colour and description of `like` as properties to set.
fn wanted_props(like: &Collection, kind: CollectionKind) -> Vec<(Prop, String)> {
    let mut props = Vec::new();
    if let Some(name) = &like.display_name {
        props.push((Prop::DisplayName, name.clone()));
    }
    if let Some(color) = &like.color {
        props.push((Prop::CalendarColor, color.clone()));
    }
    if let Some(description) = &like.description {
        props.push((
            match kind {
                CollectionKind::Calendar => Prop::CalendarDescription,
                CollectionKind::AddressBook => Prop::AddressBookDescription,
            },
            description.clone(),
        ));
    }
    props
}

fn current(collection: &Collection, prop: Prop) -> Option<String> {
    match prop {
        Prop::DisplayName => collection.display_name.clone(),
        Prop::CalendarColor => collection.color.clone(),
        Prop::CalendarDescription | Prop::AddressBookDescription => collection.description.clone(),
        _ => None,
    }
}

fn prop_noun(prop: Prop) -> &'static str {
    match prop {
        Prop::DisplayName => "name",
        Prop::CalendarColor => "colour",
        _ => "description",
    }
}
