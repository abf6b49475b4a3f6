//! An independent comparison of source and target: no state database, only what the two
//! servers serve. Per folder (mapped as a migration maps it), each message's bytes are
//! hashed on both sides and counted; then flags and internal dates of matched pairs are
//! compared.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use mailferry_imap::datetime::internal_date_to_unix;
use mailferry_imap::{FetchRange, MessageMeta, Session, SessionOptions, Uid};
use serde::Serialize;

use crate::error::{EngineError, Side};
use crate::fingerprint::body_hash;
use crate::folder_map::map_folders;
use crate::mail::describe;
use crate::options::{Account, CopyOptions};

/// The differences in one folder.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FolderDifferences {
    pub source: String,
    pub target: String,
    pub source_messages: u64,
    pub target_messages: u64,
    /// Source UIDs with no byte-identical copy on the target.
    pub missing: Vec<u32>,
    /// Target UIDs that are extra copies of a source message.
    pub duplicated: Vec<u32>,
    /// (source UID, target UID) of messages with the same internal date and size class whose
    /// bytes differ.
    pub not_identical: Vec<(u32, u32)>,
    /// (source UID, target UID, source flags, target flags).
    pub other_flags: Vec<(u32, u32, String, String)>,
    /// (source UID, target UID, source date, target date).
    pub other_date: Vec<(u32, u32, String, String)>,
    /// Messages on the target that are not in the source at all (not counted as differences).
    pub only_on_target: u64,
    pub error: Option<String>,
}

impl FolderDifferences {
    pub fn count(&self) -> usize {
        self.missing.len()
            + self.duplicated.len()
            + self.not_identical.len()
            + self.other_flags.len()
            + self.other_date.len()
            + usize::from(self.error.is_some())
    }
}

/// The whole comparison.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub source: String,
    pub target: String,
    pub folders: Vec<FolderDifferences>,
    /// How a migration maps folder names, for comparing filters; not shown.
    #[serde(skip)]
    pub folder_rewrite: crate::filters::FolderRewrite,
}

impl VerifyReport {
    pub fn differences(&self) -> usize {
        self.folders.iter().map(FolderDifferences::count).sum()
    }
}

struct Side_ {
    metas: Vec<MessageMeta>,
    hashes: HashMap<Uid, [u8; 32]>,
}

/// Compares every folder of the source with its target folder.
pub async fn verify(
    source: &Account,
    target: &Account,
    options: &CopyOptions,
) -> Result<VerifyReport, EngineError> {
    let session_options = SessionOptions {
        timeout: Duration::from_secs(options.timeout_seconds),
        ..SessionOptions::default()
    };
    let mut src = connect(source, &session_options, Side::Source).await?;
    let mut dst = connect(target, &session_options, Side::Target).await?;
    let source_scheme = crate::mail::run::naming_scheme(&mut src)
        .await
        .map_err(EngineError::imap(Side::Source))?;
    let target_scheme = crate::mail::run::naming_scheme(&mut dst)
        .await
        .map_err(EngineError::imap(Side::Target))?;
    let source_folders = src
        .list_folders(false)
        .await
        .map_err(EngineError::imap(Side::Source))?;
    let target_folders = dst
        .list_folders(false)
        .await
        .map_err(EngineError::imap(Side::Target))?;
    let wanted: Vec<_> = source_folders
        .into_iter()
        .filter(|f| options.wants_folder(&f.name))
        .collect();
    let mappings = map_folders(
        &wanted,
        &source_scheme,
        &target_folders,
        &target_scheme,
        &options.map,
    );
    let mut report = VerifyReport {
        source: source.describe(),
        target: target.describe(),
        folders: Vec::new(),
        folder_rewrite: crate::filters::FolderRewrite::new(
            &mappings,
            &source_scheme,
            &target_scheme,
        ),
    };
    for mapping in mappings {
        let mut diff = FolderDifferences {
            source: mapping.source_name.clone(),
            target: mapping.target_name.clone(),
            ..FolderDifferences::default()
        };
        let source_side = match read_folder(&mut src, &mapping.source_raw, options.chunk_size).await
        {
            Ok(side) => side,
            Err(e) => {
                diff.error = Some(describe(&EngineError::Imap {
                    side: Side::Source,
                    source: e,
                }));
                report.folders.push(diff);
                continue;
            }
        };
        diff.source_messages = source_side.metas.len() as u64;
        if !target_folders
            .iter()
            .any(|t| t.raw_name == mapping.target_raw)
        {
            diff.missing = source_side.metas.iter().map(|m| m.uid.get()).collect();
            if !diff.missing.is_empty() {
                diff.error = Some("the folder does not exist on the target".into());
            }
            report.folders.push(diff);
            continue;
        }
        let target_side = match read_folder(&mut dst, &mapping.target_raw, options.chunk_size).await
        {
            Ok(side) => side,
            Err(e) => {
                diff.error = Some(describe(&EngineError::Imap {
                    side: Side::Target,
                    source: e,
                }));
                report.folders.push(diff);
                continue;
            }
        };
        diff.target_messages = target_side.metas.len() as u64;
        compare(&source_side, &target_side, &mut diff);
        report.folders.push(diff);
    }
    src.logout().await;
    dst.logout().await;
    Ok(report)
}

async fn connect(
    account: &Account,
    options: &SessionOptions,
    side: Side,
) -> Result<Session, EngineError> {
    let mut session = Session::connect(&account.endpoint, options.clone())
        .await
        .map_err(|source| EngineError::Connect { side, source })?;
    session
        .login(&account.auth)
        .await
        .map_err(|source| EngineError::Connect { side, source })?;
    session
        .enable(&["UTF8=ACCEPT"])
        .await
        .map_err(EngineError::imap(side))?;
    Ok(session)
}

async fn read_folder(
    session: &mut Session,
    raw: &[u8],
    chunk: u64,
) -> Result<Side_, mailferry_imap::ImapError> {
    session.select(raw, true, None).await?;
    let metas = session.fetch_meta(FetchRange::All, None, false).await?;
    let mut hashes = HashMap::new();
    let small: Vec<&MessageMeta> = metas.iter().filter(|m| m.size <= chunk).collect();
    for part in small.chunks(200) {
        let tag = session
            .start_fetch_bodies(&mailferry_imap::UidSet::from_uids(
                part.iter().map(|m| m.uid),
            ))
            .await?;
        while let Some(fetch) = session.next_fetch(&tag).await? {
            if let (Some(uid), Some(data)) =
                (fetch.uid, fetch.section("").and_then(|s| s.data.clone()))
            {
                hashes.insert(uid, body_hash(&data));
            }
        }
    }
    for meta in metas.iter().filter(|m| m.size > chunk) {
        let hasher = session
            .fetch_body_partial(
                meta.uid,
                Some(meta.size),
                chunk,
                crate::mail::dedup::HashWriter::default(),
            )
            .await?;
        hashes.insert(meta.uid, hasher.finish());
    }
    Ok(Side_ { metas, hashes })
}

fn compare(source: &Side_, target: &Side_, diff: &mut FolderDifferences) {
    let mut target_by_hash: BTreeMap<[u8; 32], Vec<&MessageMeta>> = BTreeMap::new();
    for meta in &target.metas {
        if let Some(hash) = target.hashes.get(&meta.uid) {
            target_by_hash.entry(*hash).or_default().push(meta);
        }
    }
    let mut unmatched_source = Vec::new();
    let mut source_hashes: HashMap<[u8; 32], usize> = HashMap::new();
    for meta in &source.metas {
        let Some(hash) = source.hashes.get(&meta.uid) else {
            unmatched_source.push(meta);
            continue;
        };
        *source_hashes.entry(*hash).or_default() += 1;
        let candidates = target_by_hash.entry(*hash).or_default();
        if candidates.is_empty() {
            unmatched_source.push(meta);
            continue;
        }
        // Prefer a copy with the same flags and date, so one odd copy is the one reported.
        let position = candidates
            .iter()
            .position(|t| {
                crate::mail::flags::flags_key(&t.flags)
                    == crate::mail::flags::flags_key(&meta.flags)
                    && internal_date_to_unix(&t.internal_date)
                        == internal_date_to_unix(&meta.internal_date)
            })
            .unwrap_or(0);
        let pair = candidates.remove(position);
        if crate::mail::flags::flags_key(&pair.flags) != crate::mail::flags::flags_key(&meta.flags)
        {
            diff.other_flags.push((
                meta.uid.get(),
                pair.uid.get(),
                crate::mail::flags::flags_key(&meta.flags),
                crate::mail::flags::flags_key(&pair.flags),
            ));
        }
        if internal_date_to_unix(&pair.internal_date) != internal_date_to_unix(&meta.internal_date)
        {
            diff.other_date.push((
                meta.uid.get(),
                pair.uid.get(),
                meta.internal_date.clone(),
                pair.internal_date.clone(),
            ));
        }
    }
    let mut leftovers: Vec<&MessageMeta> = Vec::new();
    for (hash, rest) in target_by_hash {
        if source_hashes.contains_key(&hash) {
            diff.duplicated.extend(rest.iter().map(|m| m.uid.get()));
        } else {
            leftovers.extend(rest);
        }
    }
    for meta in unmatched_source {
        let date = internal_date_to_unix(&meta.internal_date);
        if let Some(position) = leftovers
            .iter()
            .position(|t| internal_date_to_unix(&t.internal_date) == date)
        {
            let other = leftovers.remove(position);
            diff.not_identical.push((meta.uid.get(), other.uid.get()));
        } else {
            diff.missing.push(meta.uid.get());
        }
    }
    diff.only_on_target = leftovers.len() as u64;
}
