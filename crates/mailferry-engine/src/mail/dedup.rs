//! Finding copies already on the target: by fingerprint (size, internal date, Message-ID),
//! one for one (multiplicity counts), with SHA-256 of the bodies where there is no Message-ID;
//! and waiting out appends of a killed run before looking.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;

use mailferry_imap::{FetchRange, MessageMeta, Session, UidSet};
use mailferry_store::{MappedMessage, MessageState};

use crate::error::{EngineError, Side};
use crate::fingerprint::{body_hash, Fingerprint};

/// Pairs source messages with target messages not yet claimed, by fingerprint, one for
/// one (multiplicity counts); where there is no Message-ID the bodies' hashes decide.
pub(crate) async fn dedup(
    source: &mut Session,
    target: &mut Session,
    map: &HashMap<u32, MappedMessage>,
    candidates: Vec<MessageMeta>,
    chunk: u64,
    target_metas: Vec<MessageMeta>,
) -> Result<Vec<(MessageMeta, Option<(u32, Vec<String>)>)>, EngineError> {
    let claimed: HashSet<u32> = map
        .values()
        .filter(|m| matches!(m.state, MessageState::Copied | MessageState::Present))
        .filter_map(|m| m.target_uid)
        .collect();
    let mut available: HashMap<Fingerprint, VecDeque<&MessageMeta>> = HashMap::new();
    for meta in target_metas.iter().filter(|m| !claimed.contains(&m.uid)) {
        available
            .entry(Fingerprint::of(meta))
            .or_default()
            .push_back(meta);
    }
    // Messages without a Message-ID: compare bodies of the candidates.
    let ambiguous: Vec<u32> = candidates
        .iter()
        .filter(|m| {
            Fingerprint::of(m).message_id.is_none() && available.contains_key(&Fingerprint::of(m))
        })
        .map(|m| m.uid)
        .collect();
    let (source_hashes, target_hashes) = if ambiguous.is_empty() {
        (HashMap::new(), HashMap::new())
    } else {
        let target_uids: Vec<u32> = candidates
            .iter()
            .filter(|m| ambiguous.contains(&m.uid))
            .flat_map(|m| {
                available
                    .get(&Fingerprint::of(m))
                    .into_iter()
                    .flatten()
                    .map(|t| t.uid)
            })
            .collect();
        let sizes = |metas: &[MessageMeta]| {
            metas
                .iter()
                .map(|m| (m.uid, m.size))
                .collect::<HashMap<_, _>>()
        };
        (
            hash_bodies(source, &ambiguous, &sizes(&candidates), chunk)
                .await
                .map_err(EngineError::imap(Side::Source))?,
            hash_bodies(target, &target_uids, &sizes(&target_metas), chunk)
                .await
                .map_err(EngineError::imap(Side::Target))?,
        )
    };
    let mut out = Vec::with_capacity(candidates.len());
    // Pending ones first: they were ours, and should claim their own copy.
    let mut ordered = candidates;
    ordered.sort_by_key(|m| {
        (
            map.get(&m.uid)
                .is_none_or(|r| r.state != MessageState::Pending),
            m.uid,
        )
    });
    for meta in ordered {
        let fingerprint = Fingerprint::of(&meta);
        let found = available.get_mut(&fingerprint).and_then(|queue| {
            let position = match source_hashes.get(&meta.uid) {
                Some(hash) => queue
                    .iter()
                    .position(|t| target_hashes.get(&t.uid) == Some(hash))?,
                None if fingerprint.message_id.is_none() => return None,
                None => 0,
            };
            queue.remove(position)
        });
        let found = found.map(|t| (t.uid, t.flags.clone()));
        out.push((meta, found));
    }
    Ok(out)
}

/// The target messages with the sizes of `candidates` (pipelined `UID SEARCH LARGER n-1
/// SMALLER n+1`, answered from the server's cached sizes), with their Message-IDs.
pub(crate) async fn same_size_on_target(
    target: &mut Session,
    candidates: &[MessageMeta],
) -> Result<Vec<MessageMeta>, mailferry_imap::ImapError> {
    let mut sizes: Vec<u64> = candidates
        .iter()
        .map(|m| m.size)
        .filter(|s| *s > 0)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut tags = Vec::with_capacity(sizes.len());
    for size in sizes {
        tags.push(
            target
                .send(format!("UID SEARCH LARGER {} SMALLER {}\r\n", size - 1, size + 1).as_bytes())
                .await?,
        );
    }
    let mut uids = Vec::new();
    for tag in tags {
        let done = target.wait(&tag).await?;
        for item in done.data {
            if let mailferry_imap::response::Untagged::Search(found) = item {
                uids.extend(found);
            }
        }
    }
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let set = UidSet::from_uids(uids);
    target.fetch_meta(FetchRange::Uids(&set), None, true).await
}

/// SHA-256 of the bodies of `uids` in the selected folder.
pub(crate) async fn hash_bodies(
    session: &mut Session,
    uids: &[u32],
    sizes: &HashMap<u32, u64>,
    chunk: u64,
) -> Result<HashMap<u32, [u8; 32]>, mailferry_imap::ImapError> {
    let mut out = HashMap::new();
    let (small, big): (Vec<u32>, Vec<u32>) = uids
        .iter()
        .partition(|uid| sizes.get(uid).copied().unwrap_or(0) <= chunk);
    for part in small.chunks(100) {
        let tag = session
            .start_fetch_bodies(&UidSet::from_uids(part.iter().copied()))
            .await?;
        while let Some(fetch) = session.next_fetch(&tag).await? {
            if let (Some(uid), Some(data)) =
                (fetch.uid, fetch.section("").and_then(|s| s.data.clone()))
            {
                out.insert(uid, body_hash(&data));
            }
        }
    }
    for uid in big {
        let hasher = session
            .fetch_body_partial(uid, sizes.get(&uid).copied(), chunk, HashWriter::default())
            .await?;
        out.insert(uid, hasher.finish());
    }
    Ok(out)
}

#[derive(Default)]
pub(crate) struct HashWriter(sha2::Sha256);

impl HashWriter {
    pub(crate) fn finish(self) -> [u8; 32] {
        use sha2::Digest;
        self.0.finalize().into()
    }
}

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
