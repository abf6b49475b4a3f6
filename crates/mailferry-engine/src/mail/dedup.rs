//! Finding copies already on the target: by fingerprint (size, internal date, Message-ID),
//! one for one (multiplicity counts), with SHA-256 of the bodies where there is no Message-ID;
//! and waiting out appends of a killed run before looking.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;

use mailferry_imap::{FetchRange, MessageMeta, Session, Uid, UidSet};
use mailferry_store::{MappedMessage, MessageState};

use crate::error::{EngineError, Side};
use crate::fingerprint::{body_hash, Fingerprint};

/// A target message a source message was found to be: its UID and flags.
pub(crate) type Found = Option<(Uid, Vec<String>)>;

/// Pairs source messages with target messages not yet claimed, by fingerprint, one for
/// one (multiplicity counts); where there is no Message-ID the bodies' hashes decide. The
/// decisions are [`available`], [`to_hash`] and [`pair`]; this fetches the hashes they need.
pub(crate) async fn dedup(
    source: &mut Session,
    target: &mut Session,
    map: &HashMap<Uid, MappedMessage>,
    candidates: Vec<MessageMeta>,
    chunk: u64,
    target_metas: Vec<MessageMeta>,
) -> Result<Vec<(MessageMeta, Found)>, EngineError> {
    let available = available(map, &target_metas);
    let (source_uids, target_uids) = to_hash(&candidates, &available);
    let (source_hashes, target_hashes) = if source_uids.is_empty() {
        (HashMap::new(), HashMap::new())
    } else {
        let sizes = |metas: &[MessageMeta]| {
            metas
                .iter()
                .map(|m| (m.uid, m.size))
                .collect::<HashMap<_, _>>()
        };
        (
            hash_bodies(source, &source_uids, &sizes(&candidates), chunk)
                .await
                .map_err(EngineError::imap(Side::Source))?,
            hash_bodies(target, &target_uids, &sizes(&target_metas), chunk)
                .await
                .map_err(EngineError::imap(Side::Target))?,
        )
    };
    Ok(pair(
        map,
        candidates,
        available,
        &source_hashes,
        &target_hashes,
    ))
}

/// The target messages no row of the map claims, by fingerprint, in UID order.
pub(crate) fn available<'a>(
    map: &HashMap<Uid, MappedMessage>,
    target_metas: &'a [MessageMeta],
) -> HashMap<Fingerprint, VecDeque<&'a MessageMeta>> {
    let claimed: HashSet<Uid> = map
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
    available
}

/// The bodies to hash: candidates without a Message-ID that have a target message of the
/// same fingerprint (source UIDs), and those target messages (target UIDs).
pub(crate) fn to_hash(
    candidates: &[MessageMeta],
    available: &HashMap<Fingerprint, VecDeque<&MessageMeta>>,
) -> (Vec<Uid>, Vec<Uid>) {
    let mut source = Vec::new();
    let mut target = Vec::new();
    for meta in candidates {
        let fingerprint = Fingerprint::of(meta);
        if fingerprint.message_id.is_some() {
            continue;
        }
        if let Some(queue) = available.get(&fingerprint) {
            source.push(meta.uid);
            target.extend(queue.iter().map(|t| t.uid));
        }
    }
    target.sort_unstable();
    target.dedup();
    (source, target)
}

/// Each candidate with the target message it is, if any: pending rows first (they were
/// ours, and claim their own copy), then by UID; a target message is taken once.
pub(crate) fn pair(
    map: &HashMap<Uid, MappedMessage>,
    candidates: Vec<MessageMeta>,
    mut available: HashMap<Fingerprint, VecDeque<&MessageMeta>>,
    source_hashes: &HashMap<Uid, [u8; 32]>,
    target_hashes: &HashMap<Uid, [u8; 32]>,
) -> Vec<(MessageMeta, Found)> {
    let mut ordered = candidates;
    ordered.sort_by_key(|m| {
        (
            map.get(&m.uid)
                .is_none_or(|r| r.state != MessageState::Pending),
            m.uid,
        )
    });
    let mut out = Vec::with_capacity(ordered.len());
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
    out
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
                uids.extend(found.into_iter().filter_map(Uid::new));
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
    uids: &[Uid],
    sizes: &HashMap<Uid, u64>,
    chunk: u64,
) -> Result<HashMap<Uid, [u8; 32]>, mailferry_imap::ImapError> {
    let mut out = HashMap::new();
    let (small, big): (Vec<Uid>, Vec<Uid>) = uids
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

#[cfg(test)]
mod tests {
    use super::*;

    fn u(n: u32) -> Uid {
        Uid::new(n).unwrap()
    }

    fn meta(uid: u32, size: u64, id: Option<&str>) -> MessageMeta {
        MessageMeta {
            uid: u(uid),
            flags: vec![format!("$F{uid}")],
            internal_date: "01-Jan-2024 10:00:00 +0000".into(),
            size,
            modseq: None,
            message_id: id.map(|i| format!("Message-ID: <{i}>").into_bytes()),
        }
    }

    fn row(uid: u32, state: MessageState, target_uid: Option<u32>) -> (Uid, MappedMessage) {
        (
            u(uid),
            MappedMessage {
                source_uid: u(uid),
                fingerprint: String::new(),
                state,
                target_uid: target_uid.map(u),
                flags: String::new(),
                detail: None,
            },
        )
    }

    fn found(pairs: &[(MessageMeta, Found)]) -> Vec<(u32, Option<u32>)> {
        let mut out: Vec<_> = pairs
            .iter()
            .map(|(m, f)| (m.uid.get(), f.as_ref().map(|f| f.0.get())))
            .collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn copies_are_counted_one_for_one() {
        // Two identical messages at the source, one on the target: one is found, one is not.
        let target = vec![meta(50, 100, Some("a@x"))];
        let map = HashMap::new();
        let pairs = pair(
            &map,
            vec![meta(1, 100, Some("a@x")), meta(2, 100, Some("a@x"))],
            available(&map, &target),
            &HashMap::new(),
            &HashMap::new(),
        );
        assert_eq!(found(&pairs), vec![(1, Some(50)), (2, None)]);
        assert_eq!(
            pairs
                .iter()
                .find(|(m, _)| m.uid == u(1))
                .unwrap()
                .1
                .as_ref()
                .unwrap()
                .1,
            vec!["$F50".to_string()]
        );
    }

    #[test]
    fn a_target_message_the_map_claims_is_not_found_again() {
        let target = vec![meta(50, 100, Some("a@x")), meta(51, 100, Some("a@x"))];
        let map: HashMap<_, _> = [row(9, MessageState::Copied, Some(50))]
            .into_iter()
            .collect();
        let pairs = pair(
            &map,
            vec![meta(1, 100, Some("a@x")), meta(2, 100, Some("a@x"))],
            available(&map, &target),
            &HashMap::new(),
            &HashMap::new(),
        );
        assert_eq!(found(&pairs), vec![(1, Some(51)), (2, None)]);
    }

    #[test]
    fn a_pending_message_claims_its_own_copy_first() {
        let target = vec![meta(50, 100, Some("a@x"))];
        let map: HashMap<_, _> = [row(7, MessageState::Pending, None)].into_iter().collect();
        let pairs = pair(
            &map,
            vec![meta(3, 100, Some("a@x")), meta(7, 100, Some("a@x"))],
            available(&map, &target),
            &HashMap::new(),
            &HashMap::new(),
        );
        assert_eq!(found(&pairs), vec![(3, None), (7, Some(50))]);
    }

    #[test]
    fn without_a_message_id_the_bodies_decide() {
        let target = vec![meta(50, 100, None), meta(51, 100, None)];
        let map = HashMap::new();
        let avail = available(&map, &target);
        let candidates = vec![
            meta(1, 100, None),
            meta(2, 100, None),
            meta(3, 100, Some("b@x")),
        ];
        let (source, target_uids) = to_hash(&candidates, &avail);
        assert_eq!(
            (source, target_uids),
            (vec![u(1), u(2)], vec![u(50), u(51)])
        );
        let source_hashes: HashMap<Uid, [u8; 32]> = [(u(1), [1; 32]), (u(2), [9; 32])].into();
        let target_hashes: HashMap<Uid, [u8; 32]> = [(u(50), [9; 32]), (u(51), [1; 32])].into();
        let pairs = pair(&map, candidates, avail, &source_hashes, &target_hashes);
        assert_eq!(found(&pairs), vec![(1, Some(51)), (2, Some(50)), (3, None)]);
        // Without hashes, a message without a Message-ID is never taken for another.
        let avail = available(&map, &target);
        let pairs = pair(
            &map,
            vec![meta(1, 100, None)],
            avail,
            &HashMap::new(),
            &HashMap::new(),
        );
        assert_eq!(found(&pairs), vec![(1, None)]);
    }
}
