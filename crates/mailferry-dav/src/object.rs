//! Objects (one event series, task, journal or contact each) in a collection: listing with
//! ETags, fetching in batches (multiget), changes since a sync token (RFC 6578), and
//! writing without ever overwriting what is not ours (If-None-Match / If-Match).

use crate::error::DavError;
use crate::request::{CollectionKind, Precondition, Request};
use crate::transport::{normalise_href, DavClient};
use crate::xml::{parse_multistatus, preconditions, Prop};

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

/// Every object in `collection` (sub-collections left out).
pub async fn list_objects(
    client: &DavClient,
    collection: &str,
) -> Result<Vec<ObjectRef>, DavError> {
    let collection = normalise_href(collection);
    let request = Request::propfind(
        &collection,
        1,
        &[Prop::ResourceType, Prop::GetEtag, Prop::GetContentType],
    );
    let response = client.expect_success(&request).await?;
    let ms = parse_multistatus(&response.text()).map_err(|e| client.unreadable(&request, e))?;
    Ok(ms
        .responses
        .iter()
        .filter(|r| {
            let href = normalise_href(&r.href);
            href != collection && !href.ends_with('/') && !r.is(crate::xml::DAV, "collection")
        })
        .map(|r| ObjectRef {
            href: normalise_href(&r.href),
            etag: r.text(Prop::GetEtag),
        })
        .collect())
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
        if response.status == 207 {
            let ms =
                parse_multistatus(&response.text()).map_err(|e| client.unreadable(&request, e))?;
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
            out.push(match get_object(client, &href).await? {
                Some(object) => Ok(object),
                None => Err((href, "it is gone from the server (404 Not Found)".into())),
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
        403 | 409 | 412
            if preconditions(&response.text())
                .iter()
                .any(|p| p == "valid-sync-token") =>
        {
            return Ok(SyncOutcome::TokenExpired)
        }
        // Some servers answer a stale token with a bare 403/409/412 or 400.
        400 | 403 | 409 | 412 => return Ok(SyncOutcome::TokenExpired),
        _ => return Ok(SyncOutcome::Unsupported),
    }
    let ms = parse_multistatus(&response.text()).map_err(|e| client.unreadable(&request, e))?;
    let mut changed = Vec::new();
    let mut removed = Vec::new();
    for r in &ms.responses {
        let href = normalise_href(&r.href);
        if href == collection || href.ends_with('/') {
            continue;
        }
        if r.status == Some(404) {
            removed.push(href);
        } else {
            changed.push(ObjectRef {
                href,
                etag: r.text(Prop::GetEtag),
            });
        }
    }
    Ok(SyncOutcome::Changes {
        changed,
        removed,
        token: ms.sync_token,
    })
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
    match response.status {
        200..=299 => Ok(WriteOutcome::Written(response.etag())),
        412 => Ok(WriteOutcome::PreconditionFailed),
        _ => Err(client.refusal(&request, &response)),
    }
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
        200..=299 | 404 | 410 => Ok(WriteOutcome::Written(None)),
        412 => Ok(WriteOutcome::PreconditionFailed),
        _ => Err(client.refusal(&request, &response)),
    }
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
    fn line_ends_become_crlf_once() {
        assert_eq!(with_crlf("A\nB\n"), "A\r\nB\r\n");
        assert_eq!(with_crlf("A\r\nB\r\n"), "A\r\nB\r\n");
        assert_eq!(with_crlf("A\r\nB\n"), "A\r\nB\r\n");
        assert_eq!(with_crlf("AB"), "AB");
    }
}
