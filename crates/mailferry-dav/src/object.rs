//! Objects (one event series, task, journal or contact each) in a collection: listing with
//! ETags, fetching in batches (multiget), changes since a sync token (RFC 6578), and
//! writing without ever overwriting what is not ours (If-None-Match / If-Match).

use crate::error::DavError;
use crate::request::{CollectionKind, Precondition, Request, Response};
use crate::transport::{normalise_href, DavClient};
use crate::xml::{parse_multistatus, Prop, CALDAV, CARDDAV};

/// An object's href and ETag, as a listing gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub href: String,
    pub etag: Option<String>,
}

/// An object with its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedObject {
    pub href: String,
    pub etag: Option<String>,
    /// As served (line ends put back to CRLF where an XML answer turned them into LF).
    pub data: String,
}

/// How many objects one multiget asks for.
const MULTIGET_BATCH: usize = 50;

/// A collection's members as a listing gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub objects: Vec<ObjectRef>,
    /// `false` when the server said it left members out or could not list some: a
    /// `507 Insufficient Storage` (RFC 4918 §11.5: the answer was cut short) or any other
    /// failed response in the multistatus. Nothing may be taken as deleted from such a
    /// listing: what is missing from it may well exist.
    pub complete: bool,
}

/// Whether a multistatus listing holds a response that says it is not the whole answer.
fn is_complete(ms: &crate::xml::MultiStatus, removed_ok: bool) -> bool {
    ms.responses.iter().all(|r| match r.status {
        None => true,
        Some(status) if (200..300).contains(&status) => true,
        // sync-collection reports removed members with 404 (RFC 6578 §3.5.2).
        Some(404) => removed_ok,
        Some(_) => false,
    })
}

/// Every object in `collection` (sub-collections left out).
pub async fn list_objects(client: &DavClient, collection: &str) -> Result<Listing, DavError> {
    let collection = normalise_href(collection);
    let request = Request::propfind(
        &collection,
        1,
        &[Prop::ResourceType, Prop::GetEtag, Prop::GetContentType],
    );
    let response = client.expect_success(&request).await?;
    let ms = parse_multistatus(&response.text()).map_err(|e| client.unreadable(&request, e))?;
    Ok(listing_of(&ms, &collection))
}

fn listing_of(ms: &crate::xml::MultiStatus, collection: &str) -> Listing {
    let objects = ms
        .responses
        .iter()
        .filter(|r| {
            let href = normalise_href(&r.href);
            href != collection
                && !href.ends_with('/')
                && !r.is(crate::xml::DAV, "collection")
                && r.status.is_none_or(|s| (200..300).contains(&s))
        })
        .map(|r| ObjectRef {
            href: normalise_href(&r.href),
            etag: r.text(Prop::GetEtag),
        })
        .collect();
    Listing {
        objects,
        complete: is_complete(ms, false),
    }
}

/// Fetches `hrefs` of `collection`: one `Ok` per object, one `Err((href, reason))` per
/// object the server would not give. Multiget first; what it leaves out is fetched by GET.
pub async fn fetch_objects(
    client: &DavClient,
    kind: CollectionKind,
    collection: &str,
    hrefs: &[String],
) -> Result<Vec<Result<FetchedObject, (String, String)>>, DavError> {
    let mut out = Vec::with_capacity(hrefs.len());
    for batch in hrefs.chunks(MULTIGET_BATCH) {
        let request = Request::multiget(kind, collection, batch);
        let response = client.send(&request).await?;
        let mut missing: Vec<String> = batch.iter().map(|h| normalise_href(h)).collect();
        if response.status == 401 {
            return Err(client.refusal(&request, &response));
        }
        // One bad object can make the whole answer unreadable: Radicale 3.1.8 writes a
        // U+0001 of an event's text raw into the XML, which XML 1.0 forbids. Then the batch
        // is fetched by GET, object by object, which carries the data as it is.
        let parsed = match response.status {
            207 => match parse_multistatus(&response.text()) {
                Ok(ms) => Some(ms),
                Err(reason) => {
                    tracing::warn!(
                        href = %request.href,
                        %reason,
                        "unreadable multiget answer; fetching its objects one by one"
                    );
                    None
                }
            },
            _ => None,
        };
        if let Some(ms) = parsed {
            for r in &ms.responses {
                let href = normalise_href(&r.href);
                let Some(position) = missing.iter().position(|h| *h == href) else {
                    continue;
                };
                if let Some(data) = r.data().filter(|d| !d.trim().is_empty()) {
                    missing.swap_remove(position);
                    out.push(Ok(FetchedObject {
                        href,
                        etag: r.text(Prop::GetEtag),
                        data: with_crlf(data),
                    }));
                }
            }
        }
        for href in missing {
            out.push(match get_object(client, &href).await {
                Ok(Some(object)) => Ok(object),
                Ok(None) => Err((href, "it is gone from the server (404 Not Found)".into())),
                // This object alone: the server refused to give it.
                Err(error @ DavError::Refused { .. }) => Err((href, error.to_string())),
                Err(error) => return Err(error),
            });
        }
    }
    Ok(out)
}

/// One object by GET; `None` if it is not there.
pub async fn get_object(client: &DavClient, href: &str) -> Result<Option<FetchedObject>, DavError> {
    let request = Request::get(href);
    let response = client.send(&request).await?;
    match response.status {
        404 | 410 => Ok(None),
        200 => Ok(Some(FetchedObject {
            href: normalise_href(href),
            etag: response.etag(),
            data: response.text(),
        })),
        _ => Err(client.refusal(&request, &response)),
    }
}

/// What changed in a collection since a sync token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Changes {
        /// New or changed members, with their ETag.
        changed: Vec<ObjectRef>,
        /// Members removed since the token.
        removed: Vec<String>,
        /// The token to give next time.
        token: Option<String>,
        /// The server cut the answer short (RFC 6578 §3.6: a `507` for the collection): ask
        /// again with `token` for the rest.
        truncated: bool,
    },
    /// The server no longer knows the token (RFC 6578 §3.2 `valid-sync-token`): list all.
    TokenExpired,
    /// The server has no sync-collection REPORT.
    Unsupported,
}

/// sync-collection since `token`.
pub async fn sync_changes(
    client: &DavClient,
    collection: &str,
    token: &str,
) -> Result<SyncOutcome, DavError> {
    let collection = normalise_href(collection);
    let request = Request::sync_collection(&collection, token);
    let response = client.send(&request).await?;
    match response.status {
        207 => {}
        401 => return Err(client.refusal(&request, &response)),
        // A stale token: `valid-sync-token` (RFC 6578) in a 403/409/412, or from some servers
        // a bare 403/409/412 or 400; either way the collection is listed again.
        400 | 403 | 409 | 412 => return Ok(SyncOutcome::TokenExpired),
        _ => return Ok(SyncOutcome::Unsupported),
    }
    let ms = parse_multistatus(&response.text()).map_err(|e| client.unreadable(&request, e))?;
    Ok(changes_of(ms, &collection))
}

fn changes_of(ms: crate::xml::MultiStatus, collection: &str) -> SyncOutcome {
    let truncated = !is_complete(&ms, true);
    let mut changed = Vec::new();
    let mut removed = Vec::new();
    for r in &ms.responses {
        let href = normalise_href(&r.href);
        if href == collection || href.ends_with('/') {
            continue;
        }
        match r.status {
            Some(404) => removed.push(href),
            Some(status) if !(200..300).contains(&status) => {}
            _ => changed.push(ObjectRef {
                href,
                etag: r.text(Prop::GetEtag),
            }),
        }
    }
    SyncOutcome::Changes {
        changed,
        removed,
        token: ms.sync_token,
        truncated,
    }
}

/// How a write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written; the new ETag if the server said it.
    Written(Option<String>),
    /// The precondition failed (something is there already, or it changed): 412.
    PreconditionFailed,
}

/// PUT one object.
pub async fn put_object(
    client: &DavClient,
    kind: CollectionKind,
    href: &str,
    data: &str,
    precondition: &Precondition,
) -> Result<WriteOutcome, DavError> {
    let request = Request::put(kind, href, data.as_bytes(), precondition);
    let response = client.send(&request).await?;
    write_outcome(client, &request, &response)
}

/// DELETE one object if it still has `etag`.
pub async fn delete_object(
    client: &DavClient,
    href: &str,
    precondition: &Precondition,
) -> Result<WriteOutcome, DavError> {
    let request = Request::delete(href, precondition);
    let response = client.send(&request).await?;
    match response.status {
        404 | 410 => Ok(WriteOutcome::Written(None)),
        _ => write_outcome(client, &request, &response).map(|outcome| match outcome {
            WriteOutcome::Written(_) => WriteOutcome::Written(None),
            other => other,
        }),
    }
}

/// What the answer to a PUT or DELETE of one object means.
///
/// A `207 Multi-Status` is not a success: RFC 4918 answers a write of one resource with
/// 200, 201 or 204, and Xandikos 0.2.8 wraps its refusals in a 207 (`412 Precondition
/// Failed` with `valid-calendar-data` and its reason, or `no-uid-conflict`). A 412 that
/// names a CalDAV or CardDAV precondition is a refusal too; a bare 412 is the `If-Match` or
/// `If-None-Match` we sent.
fn write_outcome(
    client: &DavClient,
    request: &Request,
    response: &Response,
) -> Result<WriteOutcome, DavError> {
    match response.status {
        207 => match refusal_in_multistatus(&response.text()) {
            Some(said) => Err(DavError::Refused {
                method: request.method.to_string(),
                href: request.href.clone(),
                status: response.status_line(),
                said,
            }),
            None => Ok(WriteOutcome::Written(response.etag())),
        },
        200..=299 => Ok(WriteOutcome::Written(response.etag())),
        412 if !protocol_preconditions(&response.text()) => Ok(WriteOutcome::PreconditionFailed),
        _ => Err(client.refusal(request, response)),
    }
}

/// The server's words for the first response of a multistatus that is not a success:
/// `412 Precondition Failed: valid-calendar-data: Not a valid calendar file: ...`. `None`
/// when every response succeeded; an unreadable body is a refusal in its own words.
fn refusal_in_multistatus(body: &str) -> Option<String> {
    let Ok(ms) = parse_multistatus(body) else {
        return Some(format!(
            "an unreadable multistatus: {}",
            crate::error::excerpt(body.as_bytes())
        ));
    };
    let failed = ms
        .responses
        .iter()
        .find(|r| r.status.is_some_and(|s| !(200..300).contains(&s)))?;
    let mut said = failed
        .status_line
        .clone()
        .unwrap_or_else(|| failed.status.unwrap_or_default().to_string());
    if !failed.error.is_empty() {
        said.push_str(": ");
        said.push_str(&failed.error.join(", "));
    }
    if let Some(description) = &failed.description {
        said.push_str(": ");
        said.push_str(description);
    }
    Some(said)
}

/// Whether an error body names a CalDAV or CardDAV precondition (RFC 4791 §5.3.2.1, RFC
/// 6352 §6.3.2.1), as opposed to a failed `If-Match`/`If-None-Match`.
fn protocol_preconditions(body: &str) -> bool {
    crate::xml::error_conditions(body)
        .iter()
        .any(|(namespace, _)| namespace == CALDAV || namespace == CARDDAV)
}

/// Bare LF line ends as CRLF (RFC 5545 §3.1, RFC 6350 §3.2 want CRLF); CRLF stays.
pub fn with_crlf(data: &str) -> String {
    if !data.contains('\n') || !data.replace("\r\n", "").contains('\n') {
        return data.to_string();
    }
    let mut out = String::with_capacity(data.len() + data.len() / 40);
    let mut previous = '\0';
    for c in data.chars() {
        if c == '\n' && previous != '\r' {
            out.push('\r');
        }
        out.push(c);
        previous = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_inside_a_multistatus_keep_the_servers_words() {
        // Xandikos 0.2.8, PUT of an event with U+0001 in its SUMMARY.
        let xandikos = r#"<ns0:multistatus xmlns:ns0="DAV:" xmlns:ns1="urn:ietf:params:xml:ns:caldav"><ns0:response><ns0:href>http%3A//127.0.0.1%3A15502/alice/calendars/calendar/ctl.ics</ns0:href><ns0:status>HTTP/1.1 412 Precondition Failed</ns0:status><ns0:error><ns1:valid-calendar-data /></ns0:error><ns0:responsedescription>Not a valid calendar file: Invalid character b'\\x01' in field SUMMARY</ns0:responsedescription></ns0:response></ns0:multistatus>"#;
        assert_eq!(
            refusal_in_multistatus(xandikos).as_deref(),
            Some("412 Precondition Failed: valid-calendar-data: Not a valid calendar file: Invalid character b'\\\\x01' in field SUMMARY")
        );
        let fine = r#"<D:multistatus xmlns:D="DAV:"><D:response><D:href>/a.ics</D:href><D:status>HTTP/1.1 201 Created</D:status></D:response></D:multistatus>"#;
        assert_eq!(refusal_in_multistatus(fine), None);
        assert!(refusal_in_multistatus("<html>oops</html>")
            .unwrap()
            .contains("oops"));
    }

    #[test]
    fn only_protocol_preconditions_make_a_412_a_refusal() {
        assert!(protocol_preconditions(
            r#"<D:error xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><C:no-uid-conflict><D:href>/a.ics</D:href></C:no-uid-conflict></D:error>"#
        ));
        // SabreDAV's answer to an If-None-Match that matched: ours, not a refusal.
        assert!(!protocol_preconditions(
            r#"<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns"><s:exception>Sabre\DAV\Exception\PreconditionFailed</s:exception><s:header>If-None-Match</s:header></d:error>"#
        ));
        assert!(!protocol_preconditions("Precondition failed"));
    }

    /// Issue 19: a listing the server cut short (507) or that holds failed responses is not
    /// complete, so nothing missing from it may be taken as deleted.
    #[test]
    fn a_listing_with_a_507_or_failed_responses_is_incomplete() {
        let whole = r#"<D:multistatus xmlns:D="DAV:"><D:response><D:href>/c/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response><D:response><D:href>/c/a.ics</D:href><D:propstat><D:prop><D:getetag>"1"</D:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>"#;
        let listing = listing_of(&parse_multistatus(whole).unwrap(), "/c/");
        assert!(listing.complete);
        assert_eq!(listing.objects.len(), 1);
        assert_eq!(listing.objects[0].etag.as_deref(), Some("\"1\""));

        let cut = r#"<D:multistatus xmlns:D="DAV:"><D:response><D:href>/c/a.ics</D:href><D:propstat><D:prop><D:getetag>"1"</D:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response><D:response><D:href>/c/</D:href><D:status>HTTP/1.1 507 Insufficient Storage</D:status></D:response></D:multistatus>"#;
        let listing = listing_of(&parse_multistatus(cut).unwrap(), "/c/");
        assert!(!listing.complete, "a 507 cuts the listing short");
        assert_eq!(listing.objects.len(), 1);

        let failed = r#"<D:multistatus xmlns:D="DAV:"><D:response><D:href>/c/b.ics</D:href><D:status>HTTP/1.1 500 Internal Server Error</D:status></D:response></D:multistatus>"#;
        let listing = listing_of(&parse_multistatus(failed).unwrap(), "/c/");
        assert!(!listing.complete);
        assert!(
            listing.objects.is_empty(),
            "a failed member is not an object"
        );
    }

    #[test]
    fn a_sync_report_cut_short_says_so_and_keeps_its_removals() {
        let cut = r#"<D:multistatus xmlns:D="DAV:"><D:response><D:href>/c/new.ics</D:href><D:propstat><D:prop><D:getetag>"2"</D:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response><D:response><D:href>/c/gone.ics</D:href><D:status>HTTP/1.1 404 Not Found</D:status></D:response><D:response><D:href>/c/</D:href><D:status>HTTP/1.1 507 Insufficient Storage</D:status></D:response><D:sync-token>t5</D:sync-token></D:multistatus>"#;
        let SyncOutcome::Changes {
            changed,
            removed,
            token,
            truncated,
        } = changes_of(parse_multistatus(cut).unwrap(), "/c/")
        else {
            panic!("changes expected");
        };
        assert!(truncated);
        assert_eq!(changed.len(), 1);
        assert_eq!(removed, vec!["/c/gone.ics".to_string()]);
        assert_eq!(token.as_deref(), Some("t5"));
        let whole = r#"<D:multistatus xmlns:D="DAV:"><D:response><D:href>/c/gone.ics</D:href><D:status>HTTP/1.1 404 Not Found</D:status></D:response><D:sync-token>t6</D:sync-token></D:multistatus>"#;
        assert!(matches!(
            changes_of(parse_multistatus(whole).unwrap(), "/c/"),
            SyncOutcome::Changes {
                truncated: false,
                ..
            }
        ));
    }

    #[test]
    fn line_ends_become_crlf_once() {
        assert_eq!(with_crlf("A\nB\n"), "A\r\nB\r\n");
        assert_eq!(with_crlf("A\r\nB\r\n"), "A\r\nB\r\n");
        assert_eq!(with_crlf("A\r\nB\n"), "A\r\nB\r\n");
        assert_eq!(with_crlf("AB"), "AB");
    }
}
