//! A groupware pass: for every source calendar and address book, its target collection
//! (from the state, matched by name, or created), then the objects that are new, changed
//! or gone since the last pass, found by RFC 6578 sync token, else ctag, else a full
//! listing compared by ETag.
//!
//! Dedup is by UID: a new source object whose UID is in the target collection already is
//! recorded as present, never written a second time. A PUT is preceded by a `Pending` row
//! in the state; after a crash the target href is looked at before anything is sent again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use mailferry_dav::{
    create_collection, delete_object, discover, fetch_objects, get_object, inspect,
    list_collections, list_objects, put_object, read_collection, sync_changes, Collection,
    CollectionKind, DavClient, DavEndpoint, DavError, Homes, ObjectKind, ObjectRef, Precondition,
    SyncOutcome, WriteOutcome,
};
use mailferry_store::{DavCollectionCheckpoint, DavObjectRow, DavObjectState, Store};
use sha2::{Digest, Sha256};

use super::report::{CollectionReport, GroupwareReport, ObjectProblem};
use super::{free_segment, match_target, GroupwareJob};
use crate::error::Side;
use crate::progress::Progress;

/// One side, logged in and discovered.
pub(crate) struct Account {
    pub client: DavClient,
    pub homes: Homes,
    pub collections: Vec<Collection>,
}

/// Logs in, finds the home sets and lists the calendars and address books of one side.
pub(crate) async fn open_account(endpoint: &DavEndpoint) -> Result<Account, DavError> {
    let client = DavClient::new(endpoint)?;
    let homes = discover(&client, &endpoint.url, endpoint.server).await?;
    let mut collections: Vec<Collection> = Vec::new();
    let mut seen = HashSet::new();
    for home in [&homes.calendars, &homes.address_books]
        .into_iter()
        .flatten()
    {
        if !seen.insert(home.clone()) {
            continue;
        }
        for collection in list_collections(&client, home).await? {
            if !collections.iter().any(|c| c.href == collection.href) {
                collections.push(collection);
            }
        }
    }
    collections.sort_by(|a, b| a.href.cmp(&b.href));
    Ok(Account {
        client,
        homes,
        collections,
    })
}

/// Both sides opened at once; else what failed on each, in words.
pub(crate) async fn open_both(job: &GroupwareJob) -> Result<(Account, Account), Vec<String>> {
    let (source, target) = tokio::join!(open_account(&job.source), open_account(&job.target));
    match (source, target) {
        (Ok(source), Ok(target)) => Ok((source, target)),
        (source, target) => {
            let what = "cannot read the calendars and address books";
            let mut problems = Vec::new();
            if let Err(e) = &source {
                problems.push(side_problem(Side::Source, what, e));
            }
            if let Err(e) = &target {
                problems.push(side_problem(Side::Target, what, e));
            }
            Err(problems)
        }
    }
}

/// `the source`/`the target` + the error's words and its hint.
pub(crate) fn side_problem(side: Side, what: &str, error: &DavError) -> String {
    let mut text = format!("{what} on the {side} server: {error}");
    if let Some(hint) = error.hint() {
        text.push_str(&format!(" (what to do: {hint})"));
    }
    text
}

/// Copies every calendar and address book of `job.source` to `job.target`.
pub async fn copy_groupware(
    job: &GroupwareJob,
    store: &Store,
    progress: &Progress,
) -> GroupwareReport {
    let started = Instant::now();
    let mut report = GroupwareReport {
        source: job.source.describe(),
        target: job.target.describe(),
        dry_run: job.dry_run,
        ..GroupwareReport::default()
    };
    let (source, mut target) = match open_both(job).await {
        Ok(both) => both,
        Err(problems) => {
            report.problems = problems;
            report.seconds = started.elapsed().as_secs_f64();
            return report;
        }
    };
    let mut taken: Vec<String> = Vec::new();
    for collection in &source.collections {
        if progress.stopping() {
            report
                .problems
                .push("stopped before every calendar and address book was copied (shutdown); the next pass carries on".into());
            break;
        }
        let mut pass = CollectionPass {
            job,
            store,
            source: &source,
            target: &mut target,
            collection,
            report: CollectionReport {
                kind: collection
                    .kind
                    .map_or("calendar", CollectionKind::as_str)
                    .to_string(),
                name: collection.label(),
                source: collection.href.clone(),
                ..CollectionReport::default()
            },
        };
        match pass.run(&mut taken).await {
            Ok(()) => {}
            Err(PassError::Dav(side, error)) => {
                pass.report.error = Some(side_problem(side, "the collection failed", &error));
            }
            Err(PassError::Store(error)) => {
                pass.report.error = Some(format!("the state database failed: {error}"));
            }
        }
        report.collections.push(pass.report);
        progress.set_groupware(report.tally());
    }
    report.counts = report.tally();
    report.seconds = started.elapsed().as_secs_f64();
    report
}

enum PassError {
    Dav(Side, DavError),
    Store(mailferry_store::StoreError),
}

impl From<mailferry_store::StoreError> for PassError {
    fn from(error: mailferry_store::StoreError) -> Self {
        PassError::Store(error)
    }
}

fn on(side: Side) -> impl FnOnce(DavError) -> PassError {
    move |error| PassError::Dav(side, error)
}

/// What a source object is to do in this pass.
enum Action {
    /// Not on the target yet (as far as the state knows).
    New,
    /// Changed at the source since it was copied.
    Update(DavObjectRow),
    /// A PUT was sent and its outcome is unknown (crash).
    Recover(DavObjectRow),
}

struct CollectionPass<'a> {
    job: &'a GroupwareJob,
    store: &'a Store,
    source: &'a Account,
    target: &'a mut Account,
    collection: &'a Collection,
    report: CollectionReport,
}

/// The target's objects by UID, built only when something new is to be written.
struct TargetIndex {
    by_uid: HashMap<String, (String, Option<String>)>,
    hrefs: HashSet<String>,
}

impl CollectionPass<'_> {
    async fn run(&mut self, taken: &mut Vec<String>) -> Result<(), PassError> {
        let kind = self.collection.kind.unwrap_or(CollectionKind::Calendar);
        let job_id = self.job.id.as_str();
        let checkpoint = self
            .store
            .dav_collection(job_id, &self.collection.href)
            .await?;
        let Some(target_collection) = self
            .target_collection(kind, checkpoint.as_ref(), taken)
            .await?
        else {
            return Ok(());
        };
        taken.push(target_collection.href.clone());
        self.report.target = Some(target_collection.href.clone());
        let mut rows: BTreeMap<String, DavObjectRow> = self
            .store
            .dav_objects(job_id, &self.collection.href)
            .await?
            .into_iter()
            .map(|r| (r.source_href.clone(), r))
            .collect();
        let same_target = checkpoint
            .as_ref()
            .is_some_and(|c| c.target_href == target_collection.href);
        // Issue 18: the target collection of the last pass is gone (made again, or another
        // one matched): what was copied into it is gone with it, and goes again.
        if checkpoint.is_some() && !same_target && !rows.is_empty() {
            self.report.notes.push(format!(
                "the {} objects copied by an earlier pass went to a {} that is gone: they are copied again",
                rows.len(),
                kind.noun()
            ));
            self.forget_rows(&mut rows, None).await?;
        }
        // The target collection changed since the last pass (or says nothing of its state):
        // our copies are looked for in it, and those gone are copied again.
        let mut lost: Vec<String> = Vec::new();
        if same_target && !self.job.dry_run && !rows.is_empty() {
            let recorded = checkpoint.as_ref().and_then(|c| c.target_state.clone());
            let now = target_state(&target_collection);
            if now.is_none() || now != recorded {
                let listing = list_objects(&self.target.client, &target_collection.href)
                    .await
                    .map_err(on(Side::Target))?;
                if listing.complete {
                    let there: HashSet<&str> =
                        listing.objects.iter().map(|o| o.href.as_str()).collect();
                    lost = rows
                        .values()
                        .filter(|r| {
                            matches!(r.state, DavObjectState::Copied | DavObjectState::Present)
                        })
                        .filter(|r| r.target_href.as_deref().is_some_and(|h| !there.contains(h)))
                        .map(|r| r.source_href.clone())
                        .collect();
                }
                if !lost.is_empty() {
                    self.report.notes.push(format!(
                        "{} objects copied earlier are no longer in the target {}: copied again",
                        lost.len(),
                        kind.noun()
                    ));
                    self.forget_rows(&mut rows, Some(&lost)).await?;
                }
            }
        }
        let (changed, removed, token) = self
            .changes(checkpoint.as_ref().filter(|_| same_target), &rows)
            .await?;

        // Retry what failed or was left pending by an earlier pass, and what the target lost.
        let mut wanted: Vec<String> = changed.iter().map(|r| r.href.clone()).collect();
        let mut touched: HashSet<String> = wanted.iter().chain(removed.iter()).cloned().collect();
        for href in lost {
            if touched.insert(href.clone()) {
                wanted.push(href);
            }
        }
        for row in rows.values() {
            if matches!(row.state, DavObjectState::Failed | DavObjectState::Pending)
                && touched.insert(row.source_href.clone())
            {
                wanted.push(row.source_href.clone());
            }
        }
        self.report.unchanged = rows
            .values()
            .filter(|r| !touched.contains(&r.source_href))
            .filter(|r| matches!(r.state, DavObjectState::Copied | DavObjectState::Present))
            .count() as u64;

        let fetched = if wanted.is_empty() {
            Vec::new()
        } else {
            fetch_objects(&self.source.client, kind, &self.collection.href, &wanted)
                .await
                .map_err(on(Side::Source))?
        };
        let mut index: Option<TargetIndex> = None;
        for object in fetched {
            let object = match object {
                Ok(object) => object,
                Err((href, reason)) => {
                    self.fail(
                        &mut rows,
                        &href,
                        None,
                        kind,
                        format!("the source would not give it: {reason}"),
                    )
                    .await?;
                    continue;
                }
            };
            let inspected = match inspect(&object.data) {
                Ok(inspected) => inspected,
                Err(reason) => {
                    self.fail(
                        &mut rows,
                        &object.href,
                        None,
                        kind,
                        format!("it does not parse: {reason}"),
                    )
                    .await?;
                    continue;
                }
            };
            if let (Some(component), CollectionKind::Calendar) = (inspected.kind.component(), kind)
            {
                if !target_collection.accepts(component) {
                    self.fail(
                        &mut rows,
                        &object.href,
                        Some(&inspected.uid),
                        kind,
                        format!("the target {} `{}` takes no {component} (its supported components: {})", kind.noun(), target_collection.label(), target_collection.components.join(", ")),
                    )
                    .await?;
                    continue;
                }
            }
            let action = match rows.get(&object.href) {
                Some(row) if row.state == DavObjectState::Pending => Action::Recover(row.clone()),
                // A failed row with a target href is a copy of ours whose update failed
                // (failed new objects keep no target href).
                Some(row) if row.target_href.is_some() => Action::Update(row.clone()),
                _ => Action::New,
            };
            let mut row = DavObjectRow {
                source_href: object.href.clone(),
                uid: inspected.uid.clone(),
                kind: inspected.kind.as_str().to_string(),
                source_etag: object.etag.clone(),
                target_href: None,
                target_etag: None,
                state: DavObjectState::Pending,
                detail: None,
            };
            match action {
                Action::Update(old) => {
                    row.target_href = old.target_href.clone();
                    row.target_etag = old.target_etag.clone();
                    row.state = match old.state {
                        DavObjectState::Present => DavObjectState::Present,
                        _ => DavObjectState::Copied,
                    };
                    self.update(kind, &mut row, &object.data).await?;
                }
                Action::Recover(old) => {
                    let href = old.target_href.clone().unwrap_or_default();
                    let there = get_object(&self.target.client, &href)
                        .await
                        .map_err(on(Side::Target))?;
                    match there.map(|o| (inspect(&o.data).map(|i| i.uid), o.etag)) {
                        Some((Ok(uid), etag)) if uid == row.uid => {
                            row.target_href = Some(href);
                            row.target_etag = etag;
                            row.state = DavObjectState::Copied;
                            self.report.copied += 1;
                        }
                        _ => {
                            if index.is_none() {
                                index =
                                    Some(self.target_index(kind, &target_collection, &rows).await?);
                            }
                            let index = index.as_mut().expect("built above");
                            self.write_new(kind, &target_collection, index, &mut row, &object.data)
                                .await?;
                        }
                    }
                }
                Action::New => {
                    if index.is_none() {
                        index = Some(self.target_index(kind, &target_collection, &rows).await?);
                    }
                    let index = index.as_mut().expect("built above");
                    self.write_new(kind, &target_collection, index, &mut row, &object.data)
                        .await?;
                }
            }
            if !self.job.dry_run {
                self.store
                    .record_dav_objects(job_id, &self.collection.href, std::slice::from_ref(&row))
                    .await?;
            }
            rows.insert(row.source_href.clone(), row);
        }

        let mut forgotten = Vec::new();
        let mut kept = 0u64;
        for href in &removed {
            let Some(row) = rows.get(href).cloned() else {
                continue;
            };
            if matches!(row.state, DavObjectState::Copied | DavObjectState::Present) {
                self.report.deleted_at_source += 1;
            }
            // Deletions are carried only when asked for, as for mail (issue 19).
            if row.state == DavObjectState::Copied && !self.job.sync_deletes {
                kept += 1;
            } else if row.state == DavObjectState::Copied {
                if let Some(target_href) = &row.target_href {
                    if self.job.dry_run {
                        self.report.deleted_on_target += 1;
                    } else {
                        let precondition = row
                            .target_etag
                            .clone()
                            .map_or(Precondition::None, Precondition::Matches);
                        match delete_object(&self.target.client, target_href, &precondition)
                            .await
                            .map_err(on(Side::Target))?
                        {
                            WriteOutcome::Written(_) => self.report.deleted_on_target += 1,
                            WriteOutcome::PreconditionFailed => self.report.notes.push(format!(
                                "`{}` was deleted at the source but changed on the target since it was copied: the target keeps it",
                                row.uid
                            )),
                        }
                    }
                }
            }
            forgotten.push(href.clone());
            rows.remove(href);
        }
        if kept > 0 {
            self.report.notes.push(format!(
                "{kept} objects were deleted at the source and kept on the target (use --sync-deletes to delete them there too)"
            ));
        }
        if !self.job.dry_run {
            // The target's state after this pass: read again when it was written to.
            let wrote = self.report.created
                || self.report.copied + self.report.updated + self.report.deleted_on_target > 0;
            let target_after = if wrote {
                read_collection(&self.target.client, &target_collection.href)
                    .await
                    .ok()
                    .and_then(|c| target_state(&c))
            } else {
                target_state(&target_collection)
            };
            self.store
                .forget_dav_objects(job_id, &self.collection.href, &forgotten)
                .await?;
            self.store
                .save_dav_collection(
                    job_id,
                    &DavCollectionCheckpoint {
                        source_href: self.collection.href.clone(),
                        kind: kind.as_str().to_string(),
                        target_href: target_collection.href.clone(),
                        sync_token: token,
                        ctag: self.collection.ctag.clone(),
                        target_state: target_after,
                    },
                )
                .await?;
        }
        self.report.source_objects = rows.len() as u64;
        for row in rows.values() {
            let tally = self.report.kinds.entry(row.kind.clone()).or_default();
            tally.total += 1;
            if !self.job.dry_run
                && matches!(row.state, DavObjectState::Copied | DavObjectState::Present)
            {
                tally.transferred += 1;
            }
        }
        Ok(())
    }

    /// The target collection from the state, else matched by name, else created.
    async fn target_collection(
        &mut self,
        kind: CollectionKind,
        checkpoint: Option<&DavCollectionCheckpoint>,
        taken: &[String],
    ) -> Result<Option<Collection>, PassError> {
        if let Some(checkpoint) = checkpoint {
            if let Some(found) = self
                .target
                .collections
                .iter()
                .find(|c| c.href == checkpoint.target_href)
            {
                return Ok(Some(found.clone()));
            }
            self.report.notes.push(format!(
                "the target {} `{}` of an earlier pass is gone; it is made again",
                kind.noun(),
                checkpoint.target_href
            ));
        }
        if let Some(found) = match_target(self.collection, &self.target.collections, taken) {
            return Ok(Some(found.clone()));
        }
        let home = match kind {
            CollectionKind::Calendar => self.target.homes.calendars.clone(),
            CollectionKind::AddressBook => self.target.homes.address_books.clone(),
        };
        let Some(home) = home else {
            self.report.error = Some(format!(
                "the target server has no {} home (it does not offer {}); nothing of `{}` was copied",
                kind.noun(),
                match kind {
                    CollectionKind::Calendar => "CalDAV",
                    CollectionKind::AddressBook => "CardDAV",
                },
                self.collection.label()
            ));
            return Ok(None);
        };
        let segment = free_segment(self.collection, &self.target.collections);
        if self.job.dry_run {
            self.report.notes.push(format!(
                "would create the {} `{}` as `{home}{segment}/`",
                kind.noun(),
                self.collection.label()
            ));
            self.report.created = true;
            let planned = Collection {
                href: format!(
                    "{home}{}/",
                    mailferry_dav::transport::encode_segment(&segment)
                ),
                kind: Some(kind),
                ..self.collection.clone()
            };
            return Ok(Some(planned));
        }
        let (created, notes) =
            create_collection(&self.target.client, &home, &segment, self.collection)
                .await
                .map_err(on(Side::Target))?;
        self.report.created = true;
        self.report.notes.extend(notes);
        self.target.collections.push(created.clone());
        Ok(Some(created))
    }

    /// New or changed source objects (with ETags), removed source hrefs, and the sync token
    /// to keep for next time.
    async fn changes(
        &mut self,
        checkpoint: Option<&DavCollectionCheckpoint>,
        rows: &BTreeMap<String, DavObjectRow>,
    ) -> Result<(Vec<ObjectRef>, Vec<String>, Option<String>), PassError> {
        let now_token = self.collection.sync_token.clone();
        if let Some(checkpoint) = checkpoint {
            if let (Some(before), Some(now)) = (&checkpoint.sync_token, &now_token) {
                if before == now {
                    self.report.delta = "sync-token".into();
                    return Ok((Vec::new(), Vec::new(), now_token));
                }
                match self.sync_all(before).await? {
                    SyncOutcome::Changes {
                        changed,
                        removed,
                        token,
                        ..
                    } => {
                        self.report.delta = "sync-token".into();
                        // Only what really differs from what we copied (a server may list
                        // members again that did not change).
                        let changed = changed
                            .into_iter()
                            .filter(|r| {
                                rows.get(&r.href).is_none_or(|row| {
                                    row.source_etag.is_none() || row.source_etag != r.etag
                                })
                            })
                            .collect();
                        return Ok((changed, removed, token.or(now_token)));
                    }
                    SyncOutcome::TokenExpired | SyncOutcome::Unsupported => {}
                }
            } else if checkpoint.ctag.is_some() && checkpoint.ctag == self.collection.ctag {
                self.report.delta = "ctag".into();
                return Ok((Vec::new(), Vec::new(), now_token));
            }
        }
        self.report.delta = "full".into();
        let listing = list_objects(&self.source.client, &self.collection.href)
            .await
            .map_err(on(Side::Source))?;
        let listed = listing.objects;
        let present: HashSet<&str> = listed.iter().map(|r| r.href.as_str()).collect();
        // What is missing from an incomplete listing may exist: nothing is taken as deleted.
        let removed = if listing.complete {
            rows.keys()
                .filter(|href| !present.contains(href.as_str()))
                .cloned()
                .collect()
        } else {
            self.report.notes.push(format!(
                "the source server left members out of its listing of this {} (507 or failed responses): no object is taken as deleted at the source this pass",
                self.collection.kind.map_or("calendar", CollectionKind::noun)
            ));
            Vec::new()
        };
        let changed = listed
            .iter()
            .filter(|r| {
                rows.get(&r.href)
                    .is_none_or(|row| row.source_etag.is_none() || row.source_etag != r.etag)
            })
            .cloned()
            .collect();
        Ok((changed, removed, now_token))
    }

    /// sync-collection since `token`, asked again while the server cuts its answer short
    /// (RFC 6578 §3.6), the pieces joined.
    async fn sync_all(&mut self, token: &str) -> Result<SyncOutcome, PassError> {
        /// Rounds before the rest is left to the next pass (a server that never finishes).
        const ROUNDS: usize = 100;
        let mut token = token.to_string();
        let mut changed: BTreeMap<String, ObjectRef> = BTreeMap::new();
        let mut removed: Vec<String> = Vec::new();
        for _ in 0..ROUNDS {
            match sync_changes(&self.source.client, &self.collection.href, &token)
                .await
                .map_err(on(Side::Source))?
            {
                SyncOutcome::Changes {
                    changed: more,
                    removed: gone,
                    token: next,
                    truncated,
                } => {
                    for object in more {
                        removed.retain(|h| *h != object.href);
                        changed.insert(object.href.clone(), object);
                    }
                    for href in gone {
                        changed.remove(&href);
                        removed.push(href);
                    }
                    let advanced = next.as_deref().is_some_and(|n| n != token);
                    if let Some(next) = next.clone() {
                        token = next;
                    }
                    if !truncated || !advanced {
                        return Ok(SyncOutcome::Changes {
                            changed: changed.into_values().collect(),
                            removed,
                            token: Some(token),
                            truncated,
                        });
                    }
                }
                other => return Ok(other),
            }
        }
        self.report.notes.push(format!(
            "the source server cut its list of changes short {ROUNDS} times: the rest is taken on the next pass"
        ));
        Ok(SyncOutcome::Changes {
            changed: changed.into_values().collect(),
            removed,
            token: Some(token),
            truncated: true,
        })
    }

    /// Forgets rows (all, or those of `hrefs`) in the state and in `rows`.
    async fn forget_rows(
        &mut self,
        rows: &mut BTreeMap<String, DavObjectRow>,
        hrefs: Option<&[String]>,
    ) -> Result<(), PassError> {
        let hrefs: Vec<String> = match hrefs {
            Some(hrefs) => hrefs.to_vec(),
            None => rows.keys().cloned().collect(),
        };
        if !self.job.dry_run {
            self.store
                .forget_dav_objects(&self.job.id, &self.collection.href, &hrefs)
                .await?;
        }
        for href in &hrefs {
            rows.remove(href);
        }
        Ok(())
    }

    /// The UIDs on the target collection: what our state says we wrote there, and the rest
    /// fetched and read.
    async fn target_index(
        &self,
        kind: CollectionKind,
        target: &Collection,
        rows: &BTreeMap<String, DavObjectRow>,
    ) -> Result<TargetIndex, PassError> {
        if self.report.created && self.job.dry_run {
            return Ok(TargetIndex {
                by_uid: HashMap::new(),
                hrefs: HashSet::new(),
            });
        }
        let listed = list_objects(&self.target.client, &target.href)
            .await
            .map_err(on(Side::Target))?
            .objects;
        let known: HashMap<&str, &DavObjectRow> = rows
            .values()
            .filter_map(|r| r.target_href.as_deref().map(|h| (h, r)))
            .collect();
        let mut index = TargetIndex {
            by_uid: HashMap::new(),
            hrefs: listed.iter().map(|r| r.href.clone()).collect(),
        };
        let mut unknown = Vec::new();
        for object in &listed {
            match known.get(object.href.as_str()) {
                Some(row) if row.state != DavObjectState::Pending => {
                    index
                        .by_uid
                        .insert(row.uid.clone(), (object.href.clone(), object.etag.clone()));
                }
                _ => unknown.push(object.href.clone()),
            }
        }
        if !unknown.is_empty() {
            let fetched = fetch_objects(&self.target.client, kind, &target.href, &unknown)
                .await
                .map_err(on(Side::Target))?;
            for object in fetched.into_iter().flatten() {
                if let Ok(inspected) = inspect(&object.data) {
                    index
                        .by_uid
                        .entry(inspected.uid)
                        .or_insert((object.href, object.etag));
                }
            }
        }
        Ok(index)
    }

    /// Writes a new object unless its UID is on the target already.
    async fn write_new(
        &mut self,
        kind: CollectionKind,
        target: &Collection,
        index: &mut TargetIndex,
        row: &mut DavObjectRow,
        data: &str,
    ) -> Result<(), PassError> {
        if let Some((href, etag)) = index.by_uid.get(&row.uid) {
            row.target_href = Some(href.clone());
            row.target_etag = etag.clone();
            row.state = DavObjectState::Present;
            self.report.already_present += 1;
            return Ok(());
        }
        if self.job.dry_run {
            row.state = DavObjectState::Copied;
            self.report.copied += 1;
            return Ok(());
        }
        let mut href = target_href(target, &row.source_href, &row.uid, kind, false);
        if index.hrefs.contains(&href) {
            href = target_href(target, &row.source_href, &row.uid, kind, true);
        }
        for attempt in 0..2 {
            row.target_href = Some(href.clone());
            row.state = DavObjectState::Pending;
            self.store
                .record_dav_objects(
                    &self.job.id,
                    &self.collection.href,
                    std::slice::from_ref(row),
                )
                .await?;
            match put_object(
                &self.target.client,
                kind,
                &href,
                data,
                &Precondition::Absent,
            )
            .await
            {
                Ok(WriteOutcome::Written(etag)) => {
                    row.target_etag = etag;
                    row.state = DavObjectState::Copied;
                    index
                        .by_uid
                        .insert(row.uid.clone(), (href.clone(), row.target_etag.clone()));
                    index.hrefs.insert(href);
                    self.report.copied += 1;
                    return Ok(());
                }
                Ok(WriteOutcome::PreconditionFailed) => {
                    // Something is at that href: ours from a crashed pass, or another object.
                    let there = get_object(&self.target.client, &href)
                        .await
                        .map_err(on(Side::Target))?;
                    if let Some(object) = there {
                        if inspect(&object.data).is_ok_and(|i| i.uid == row.uid) {
                            row.target_etag = object.etag;
                            row.state = DavObjectState::Copied;
                            self.report.copied += 1;
                            return Ok(());
                        }
                    }
                    if attempt == 0 {
                        href = target_href(target, &row.source_href, &row.uid, kind, true);
                        continue;
                    }
                    let reason = format!("the target has another object at `{href}`");
                    row.target_href = None;
                    self.set_failed(row, reason);
                    return Ok(());
                }
                Err(error) if matches!(error, DavError::Refused { .. }) => {
                    row.target_href = None;
                    self.set_failed(row, format!("the target refused it: {error}"));
                    return Ok(());
                }
                Err(error) => return Err(PassError::Dav(Side::Target, error)),
            }
        }
        Ok(())
    }

    /// Writes a changed source object over our copy, unless the target changed it.
    async fn update(
        &mut self,
        kind: CollectionKind,
        row: &mut DavObjectRow,
        data: &str,
    ) -> Result<(), PassError> {
        if row.state == DavObjectState::Present {
            // Not ours: it was on the target before the migration.
            self.report.unchanged += 1;
            self.report.notes.push(format!(
                "`{}` changed at the source, but the target's own copy (there before the migration) is kept",
                row.uid
            ));
            return Ok(());
        }
        if self.job.dry_run {
            self.report.updated += 1;
            return Ok(());
        }
        let href = row.target_href.clone().unwrap_or_default();
        let precondition = row
            .target_etag
            .clone()
            .map_or(Precondition::None, Precondition::Matches);
        match put_object(&self.target.client, kind, &href, data, &precondition).await {
            Ok(WriteOutcome::Written(etag)) => {
                row.target_etag = etag;
                row.state = DavObjectState::Copied;
                self.report.updated += 1;
            }
            Ok(WriteOutcome::PreconditionFailed) => {
                self.report.unchanged += 1;
                self.report.notes.push(format!(
                    "`{}` changed at the source and on the target since it was copied: the target's version is kept",
                    row.uid
                ));
            }
            Err(error) if matches!(error, DavError::Refused { .. }) => {
                self.set_failed(row, format!("the target refused the change: {error}"));
            }
            Err(error) => return Err(PassError::Dav(Side::Target, error)),
        }
        Ok(())
    }

    fn set_failed(&mut self, row: &mut DavObjectRow, reason: String) {
        row.state = DavObjectState::Failed;
        row.detail = Some(reason.clone());
        self.report.failed.push(ObjectProblem {
            href: row.source_href.clone(),
            uid: Some(row.uid.clone()).filter(|u| !u.is_empty()),
            reason,
        });
    }

    /// Records an object that could not even be read.
    async fn fail(
        &mut self,
        rows: &mut BTreeMap<String, DavObjectRow>,
        href: &str,
        uid: Option<&str>,
        kind: CollectionKind,
        reason: String,
    ) -> Result<(), PassError> {
        let mut row = rows.get(href).cloned().unwrap_or(DavObjectRow {
            source_href: href.to_string(),
            uid: String::new(),
            kind: match kind {
                CollectionKind::AddressBook => ObjectKind::Contact,
                CollectionKind::Calendar => ObjectKind::Other,
            }
            .as_str()
            .to_string(),
            source_etag: None,
            target_href: None,
            target_etag: None,
            state: DavObjectState::Failed,
            detail: None,
        });
        if let Some(uid) = uid {
            row.uid = uid.to_string();
        }
        // Fetched again next time; a copy made by an earlier pass stays recorded as ours.
        row.source_etag = None;
        if matches!(row.state, DavObjectState::Copied | DavObjectState::Present) {
            self.report.failed.push(ObjectProblem {
                href: href.to_string(),
                uid: Some(row.uid.clone()).filter(|u| !u.is_empty()),
                reason,
            });
        } else {
            row.target_href = None;
            self.set_failed(&mut row, reason);
        }
        if !self.job.dry_run {
            self.store
                .record_dav_objects(
                    &self.job.id,
                    &self.collection.href,
                    std::slice::from_ref(&row),
                )
                .await?;
        }
        rows.insert(href.to_string(), row);
        Ok(())
    }
}

/// A collection's state as its server says it: `sync:<token>`, else `ctag:<ctag>`.
fn target_state(collection: &Collection) -> Option<String> {
    collection
        .sync_token
        .as_ref()
        .map(|t| format!("sync:{t}"))
        .or_else(|| collection.ctag.as_ref().map(|c| format!("ctag:{c}")))
}

/// Where a new object goes in the target collection: the source's file name when it is a
/// plain one, else (or when `hashed`) one made from the UID.
fn target_href(
    target: &Collection,
    source_href: &str,
    uid: &str,
    kind: CollectionKind,
    hashed: bool,
) -> String {
    let name = mailferry_dav::transport::last_segment(source_href);
    let plain = !name.is_empty()
        && name.len() <= 120
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@+=".contains(c))
        && !name.starts_with('.');
    let name = if plain && !hashed {
        name
    } else {
        let digest = hex::encode(Sha256::digest(uid.as_bytes()));
        format!("{}.{}", &digest[..32], kind.extension())
    };
    let mut href = target.href.clone();
    if !href.ends_with('/') {
        href.push('/');
    }
    href.push_str(&mailferry_dav::transport::encode_segment(&name));
    href
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_objects_keep_plain_names_else_take_one_from_the_uid() {
        let target = Collection {
            href: "/t/cal/".into(),
            ..Collection::default()
        };
        assert_eq!(
            target_href(
                &target,
                "/s/x/standup.ics",
                "u",
                CollectionKind::Calendar,
                false
            ),
            "/t/cal/standup.ics"
        );
        let odd = target_href(
            &target,
            "/s/x/a%20b%3F.ics",
            "u1",
            CollectionKind::Calendar,
            false,
        );
        assert!(odd.starts_with("/t/cal/") && odd.ends_with(".ics") && odd.len() == 7 + 32 + 4);
        assert_ne!(
            target_href(
                &target,
                "/s/x/c.vcf",
                "u1",
                CollectionKind::AddressBook,
                true
            ),
            "/t/cal/c.vcf"
        );
    }
}
