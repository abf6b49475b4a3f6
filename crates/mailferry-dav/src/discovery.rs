//! Where an account's calendars and address books live (SERVERTYPES.md, "DAV discovery
//! order"): the given URL's path → `/.well-known/caldav|carddav` (RFC 6764 §5) → the
//! product's known context paths → `current-user-principal` (RFC 5397) →
//! `calendar-home-set` (RFC 4791 §6.2.1) and `addressbook-home-set` (RFC 6352 §7.1.1).

use url::Url;

use crate::error::DavError;
use crate::request::{Request, Response};
use crate::transport::{normalise_href, DavClient};
use crate::xml::{parse_multistatus, Prop};

/// Server products whose DAV layout is known (SERVERTYPES.md §2, §3, §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerKind {
    /// Well-known URLs and principals only.
    #[default]
    Generic,
    Zimbra,
    Kolab,
    OpenXchange,
    Nextcloud,
    Sogo,
    Radicale,
    Baikal,
}

impl ServerKind {
    /// The kind for a server type name (`zimbra`, `kolab`, `openxchange`, ...); `None` for
    /// names that are not DAV servers.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "generic" | "dav" | "imap" => ServerKind::Generic,
            "zimbra" => ServerKind::Zimbra,
            "kolab" => ServerKind::Kolab,
            "openxchange" | "ox" => ServerKind::OpenXchange,
            "nextcloud" => ServerKind::Nextcloud,
            "sogo" => ServerKind::Sogo,
            "radicale" => ServerKind::Radicale,
            "baikal" => ServerKind::Baikal,
            _ => return None,
        })
    }

    /// The DAV address of an account of this type whose mail server is `host`, where the
    /// product has a usual one (SERVERTYPES.md §6 "DAV discovery"). Discovery still starts
    /// with the well-known URLs on that host.
    pub fn default_url(self, host: &str) -> Option<String> {
        Some(match self {
            ServerKind::Zimbra => format!("https://{host}/dav/"),
            ServerKind::Kolab => format!("https://{host}/iRony/"),
            ServerKind::OpenXchange => format!("https://{host}/servlet/dav/"),
            ServerKind::Nextcloud => format!("https://{host}/remote.php/dav/"),
            ServerKind::Sogo => format!("https://{host}/SOGo/dav/"),
            ServerKind::Baikal => format!("https://{host}/dav.php/"),
            ServerKind::Radicale => format!("https://{host}:5232/"),
            ServerKind::Generic => return None,
        })
    }

    /// Paths to try after the well-known URLs, `user` filled in.
    fn context_paths(self, user: &str) -> Vec<String> {
        let user = crate::transport::encode_segment(user);
        match self {
            ServerKind::Zimbra => vec![
                "/dav/".into(),
                format!("/dav/{user}/"),
                format!("/principals/users/{user}/"),
            ],
            ServerKind::Kolab => vec![
                "/iRony/".into(),
                format!("/iRony/principals/{user}/"),
                "/dav/".into(),
                format!("/dav/principals/user/{user}/"),
            ],
            ServerKind::OpenXchange => vec!["/servlet/dav/".into(), "/".into()],
            ServerKind::Nextcloud => vec![
                "/remote.php/dav/".into(),
                format!("/remote.php/dav/principals/users/{user}/"),
            ],
            ServerKind::Sogo => vec![format!("/SOGo/dav/{user}/"), "/SOGo/dav/".into()],
            ServerKind::Radicale => vec![format!("/{user}/")],
            ServerKind::Baikal => vec!["/dav.php/".into(), format!("/dav.php/principals/{user}/")],
            ServerKind::Generic => Vec::new(),
        }
    }
}

/// What discovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Homes {
    pub principal: Option<String>,
    /// The calendar home set (an href), if the server has calendars.
    pub calendars: Option<String>,
    /// The address book home set, if the server has address books.
    pub address_books: Option<String>,
}

const HOME_PROPS: &[Prop] = &[
    Prop::CurrentUserPrincipal,
    Prop::CalendarHomeSet,
    Prop::AddressBookHomeSet,
    Prop::ResourceType,
];

/// Whether the server takes the login: one PROPFIND (depth 0) of the current user's
/// principal at `start`'s path. A 401 is [`DavError::LoginRejected`] (or the refusal in the
/// server's words), no answer an error; any other answer means the login was taken (what
/// is there is discovery's business, when the pass runs). For a check before anything is
/// stored.
pub async fn check_login(client: &DavClient, start: &Url) -> Result<(), DavError> {
    let request = Request::propfind(start.path(), 0, &[Prop::CurrentUserPrincipal]);
    let response = client.send(&request).await?;
    if response.status == 401 {
        return Err(client.refusal(&request, &response));
    }
    Ok(())
}

/// Finds the home sets of the logged-in user, starting from `start` (the endpoint's URL).
pub async fn discover(
    client: &DavClient,
    start: &Url,
    server: ServerKind,
) -> Result<Homes, DavError> {
    let mut candidates: Vec<String> = Vec::new();
    let push = |candidates: &mut Vec<String>, path: String| {
        let path = normalise_href(&path);
        if !candidates.contains(&path) {
            candidates.push(path);
        }
    };
    if start.path() != "/" {
        push(&mut candidates, start.path().to_string());
    }
    for service in ["caldav", "carddav"] {
        if let Some(path) = well_known(client, service).await? {
            push(&mut candidates, path);
        }
    }
    for path in server.context_paths(client.user()) {
        push(&mut candidates, path);
    }
    push(&mut candidates, "/".into());

    let mut tried = Vec::new();
    for candidate in &candidates {
        tried.push(candidate.clone());
        let Some(found) = homes_at(client, candidate).await? else {
            continue;
        };
        if found.calendars.is_some() || found.address_books.is_some() {
            return Ok(found);
        }
        if let Some(principal) = found.principal.clone().filter(|p| p != candidate) {
            tried.push(principal.clone());
            if let Some(at_principal) = homes_at(client, &principal).await? {
                if at_principal.calendars.is_some() || at_principal.address_books.is_some() {
                    return Ok(Homes {
                        principal: Some(principal),
                        ..at_principal
                    });
                }
            }
        }
    }
    Err(DavError::NoHome {
        url: start.to_string(),
        tried: tried.join(", "),
    })
}

/// `/.well-known/caldav` → the path it redirects to (or itself, if it answers).
async fn well_known(client: &DavClient, service: &str) -> Result<Option<String>, DavError> {
    let mut href = format!("/.well-known/{service}");
    for _ in 0..5 {
        let request = Request::propfind(&href, 0, &[Prop::CurrentUserPrincipal]);
        let response = client.send(&request).await?;
        match response.status {
            301 | 302 | 303 | 307 | 308 => {
                let Some(location) = response.header("Location") else {
                    return Ok(None);
                };
                let target = client
                    .url_for(&href)?
                    .join(location)
                    .map_err(|e| client.unreadable(&request, format!("bad Location: {e}")))?;
                let here = client.url_for("/")?;
                if target.origin() != here.origin() {
                    return Err(DavError::ForeignRedirect {
                        href,
                        location: target.to_string(),
                    });
                }
                href = target.path().to_string();
            }
            207 => return Ok(Some(href)),
            401 => return Err(client.refusal(&request, &response)),
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// The principal and home sets PROPFIND finds at `href`; `None` when it is not there.
async fn homes_at(client: &DavClient, href: &str) -> Result<Option<Homes>, DavError> {
    let request = Request::propfind(href, 0, HOME_PROPS);
    let response = client.send(&request).await?;
    if response.status == 401 {
        return Err(client.refusal(&request, &response));
    }
    if response.status != 207 {
        return Ok(None);
    }
    Ok(read_homes(&response))
}

fn read_homes(response: &Response) -> Option<Homes> {
    let ms = parse_multistatus(&response.text()).ok()?;
    let first = ms.responses.first()?;
    let href = |prop| {
        first
            .prop(prop)
            .and_then(|p| p.hrefs.first())
            .map(|h| normalise_href(h))
    };
    Some(Homes {
        principal: href(Prop::CurrentUserPrincipal),
        calendars: href(Prop::CalendarHomeSet),
        address_books: href(Prop::AddressBookHomeSet),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_name_the_usual_places() {
        assert_eq!(
            ServerKind::parse("zimbra").unwrap().context_paths("a@b.c")[1],
            "/dav/a@b.c/"
        );
        assert_eq!(
            ServerKind::Nextcloud
                .default_url("cloud.example")
                .as_deref(),
            Some("https://cloud.example/remote.php/dav/")
        );
        assert_eq!(ServerKind::Generic.default_url("h"), None);
        assert_eq!(ServerKind::parse("exchange"), None);
    }

    #[test]
    fn homes_come_from_the_first_response() {
        let body = r#"<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><response><href>/</href><propstat><prop><current-user-principal><href>/alice/</href></current-user-principal><C:calendar-home-set><href>http://h/alice/calendars/</href></C:calendar-home-set></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#;
        let response = Response {
            status: 207,
            body: body.as_bytes().to_vec(),
            ..Response::default()
        };
        let homes = read_homes(&response).unwrap();
        assert_eq!(homes.principal.as_deref(), Some("/alice/"));
        assert_eq!(homes.calendars.as_deref(), Some("/alice/calendars/"));
        assert_eq!(homes.address_books, None);
    }
}
