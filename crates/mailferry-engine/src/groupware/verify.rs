//! An independent comparison of groupware: no state, only what the two servers serve.
//! Each source calendar and address book is paired with its target collection the way a
//! pass pairs them when it has no state (same display name, else same path segment); then
//! every object is matched by UID and compared in normal form (see
//! [`mailferry_dav::normalise`]): servers rewrite what they store, so bytes would differ.

use std::collections::BTreeMap;

use mailferry_dav::{
    fetch_objects, first_difference, inspect, list_objects, normalise, Collection, CollectionKind,
    DavClient, DavError,
};
use serde::Serialize;

use super::copy::{open_both, side_problem};
use super::{match_target, GroupwareJob};
use crate::error::Side;

/// One object that differs.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectDifference {
    pub uid: String,
    /// The first line (in normal form) only the source has, and the one only the target has.
    pub source_line: String,
    pub target_line: String,
}

/// One source collection against its target collection.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CollectionComparison {
    pub kind: String,
    pub name: String,
    pub source: String,
    pub target: Option<String>,
    pub source_objects: u64,
    pub target_objects: u64,
    pub equal: u64,
    /// UIDs with no object on the target.
    pub missing: Vec<String>,
    pub different: Vec<ObjectDifference>,
    /// Objects that cannot be read on either side: `(side, href, reason)`.
    pub unreadable: Vec<(String, String, String)>,
    /// Objects only on the target (not an error).
    pub only_on_target: u64,
    /// Name, colour or description that differ (reported, not counted).
    pub property_notes: Vec<String>,
    pub error: Option<String>,
}

impl CollectionComparison {
    pub fn differences(&self) -> usize {
        self.missing.len()
            + self.different.len()
            + self.unreadable.len()
            // A collection missing on the target carries its error.
            + usize::from(self.error.is_some())
    }
}

/// The whole comparison.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupwareVerifyReport {
    pub source: String,
    pub target: String,
    pub collections: Vec<CollectionComparison>,
    pub problems: Vec<String>,
}

impl GroupwareVerifyReport {
    pub fn differences(&self) -> usize {
        self.problems.len()
            + self
                .collections
                .iter()
                .map(CollectionComparison::differences)
                .sum::<usize>()
    }
}

/// Compares every source calendar and address book with its target collection.
pub async fn verify_groupware(job: &GroupwareJob) -> GroupwareVerifyReport {
    let mut report = GroupwareVerifyReport {
        source: job.source.describe(),
        target: job.target.describe(),
        ..GroupwareVerifyReport::default()
    };
    let (source, target) = match open_both(job).await {
        Ok(both) => both,
        Err(problems) => {
            report.problems = problems;
            return report;
        }
    };
    let mut taken = Vec::new();
    for collection in &source.collections {
        let kind = collection.kind.unwrap_or(CollectionKind::Calendar);
        let mut comparison = CollectionComparison {
            kind: kind.as_str().to_string(),
            name: collection.label(),
            source: collection.href.clone(),
            ..CollectionComparison::default()
        };
        match match_target(collection, &target.collections, &taken) {
            None => comparison.missing_collection(kind),
            Some(target_collection) => {
                taken.push(target_collection.href.clone());
                comparison.target = Some(target_collection.href.clone());
                comparison.compare_properties(collection, target_collection);
                if let Err((side, error)) = comparison
                    .compare_objects(
                        kind,
                        &source.client,
                        collection,
                        &target.client,
                        target_collection,
                    )
                    .await
                {
                    comparison.error = Some(side_problem(side, "cannot compare", &error));
                }
            }
        }
        report.collections.push(comparison);
    }
    report
}

/// Every object of a collection in normal form by UID; unreadable ones listed apart.
type Normalised = (BTreeMap<String, String>, Vec<(String, String)>);

async fn normal_forms(
    client: &DavClient,
    kind: CollectionKind,
    collection: &str,
) -> Result<Normalised, DavError> {
    let listing = list_objects(client, collection).await?;
    let hrefs: Vec<String> = listing.objects.into_iter().map(|r| r.href).collect();
    let mut by_uid = BTreeMap::new();
    let mut unreadable = Vec::new();
    if !listing.complete {
        // Not a clean comparison: what the server left out cannot be compared.
        unreadable.push((
            collection.to_string(),
            "the server left members out of its listing (507 or failed responses)".to_string(),
        ));
    }
    for fetched in fetch_objects(client, kind, collection, &hrefs).await? {
        match fetched {
            Err((href, reason)) => unreadable.push((href, reason)),
            Ok(object) => {
                match inspect(&object.data).and_then(|i| Ok((i.uid, normalise(&object.data)?))) {
                    Ok((uid, normal)) => {
                        by_uid.insert(uid, normal);
                    }
                    Err(reason) => unreadable.push((object.href, reason)),
                }
            }
        }
    }
    Ok((by_uid, unreadable))
}

impl CollectionComparison {
    fn missing_collection(&mut self, kind: CollectionKind) {
        self.error = Some(format!(
            "no {} named `{}` on the target",
            kind.noun(),
            self.name
        ));
    }

    fn compare_properties(&mut self, source: &Collection, target: &Collection) {
        let pairs = [
            ("name", &source.display_name, &target.display_name),
            ("colour", &source.color, &target.color),
            ("description", &source.description, &target.description),
        ];
        for (what, a, b) in pairs {
            if a.is_some() && a != b {
                self.property_notes.push(format!(
                    "{what}: `{}` at the source, `{}` on the target",
                    a.as_deref().unwrap_or(""),
                    b.as_deref().unwrap_or("(none)")
                ));
            }
        }
    }

    async fn compare_objects(
        &mut self,
        kind: CollectionKind,
        source_client: &DavClient,
        source: &Collection,
        target_client: &DavClient,
        target: &Collection,
    ) -> Result<(), (Side, DavError)> {
        let (source_objects, source_unreadable) = normal_forms(source_client, kind, &source.href)
            .await
            .map_err(|e| (Side::Source, e))?;
        let (target_objects, target_unreadable) = normal_forms(target_client, kind, &target.href)
            .await
            .map_err(|e| (Side::Target, e))?;
        self.source_objects = (source_objects.len() + source_unreadable.len()) as u64;
        self.target_objects = (target_objects.len() + target_unreadable.len()) as u64;
        for (href, reason) in source_unreadable {
            self.unreadable.push(("source".into(), href, reason));
        }
        for (href, reason) in target_unreadable {
            self.unreadable.push(("target".into(), href, reason));
        }
        for (uid, normal) in &source_objects {
            match target_objects.get(uid) {
                None => self.missing.push(uid.clone()),
                Some(other) if other == normal => self.equal += 1,
                Some(other) => {
                    let (source_line, target_line) = first_difference(normal, other);
                    self.different.push(ObjectDifference {
                        uid: uid.clone(),
                        source_line,
                        target_line,
                    });
                }
            }
        }
        self.only_on_target = target_objects
            .keys()
            .filter(|uid| !source_objects.contains_key(*uid))
            .count() as u64;
        Ok(())
    }
}
