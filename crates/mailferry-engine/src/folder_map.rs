//! Which target folder each source folder goes to.
//!
//! In order: an explicit `--map`; a special folder (Sent, Trash, ...) goes to the target's
//! folder with the same special-use flag, whatever its name; INBOX to INBOX; anything else
//! keeps its path, re-joined with the target's separator under the target's prefix. A
//! child follows its parent's mapping (`Sent/2019` → `Sent Items/2019`). A name part that
//! holds the target's separator gets `_` in its place, and the report says so.

use std::collections::HashMap;

use mailferry_imap::{mutf7, Folder, SpecialUse};

/// How the two sides name folders.
#[derive(Debug, Clone)]
pub struct NamingScheme {
    /// Personal namespace prefix, e.g. `INBOX.`, or empty.
    pub prefix: String,
    pub delimiter: Option<char>,
    /// Names travel as UTF-8 (UTF8=ACCEPT enabled) instead of modified UTF-7.
    pub utf8: bool,
}

/// Where one source folder goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderMapping {
    pub source_name: String,
    pub source_raw: Vec<u8>,
    pub target_name: String,
    pub target_raw: Vec<u8>,
    pub special_use: Option<SpecialUse>,
    /// Why the name changed beyond separator and prefix, for the report.
    pub note: Option<String>,
}

/// Splits a source name into its path below the personal prefix.
fn source_path(folder: &Folder, scheme: &NamingScheme) -> Vec<String> {
    if folder.name.eq_ignore_ascii_case("INBOX") {
        return vec!["INBOX".into()];
    }
    let mut name = folder.name.as_str();
    // `get` and not a slice: the prefix's length may fall inside a character of the name
    // (issue 19: `Ä...` under the prefix `I`).
    if !scheme.prefix.is_empty()
        && name.len() > scheme.prefix.len()
        && name
            .get(..scheme.prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(&scheme.prefix))
    {
        name = &name[scheme.prefix.len()..];
    }
    match folder.delimiter.or(scheme.delimiter) {
        Some(d) => name.split(d).map(str::to_string).collect(),
        None => vec![name.to_string()],
    }
}

/// The target's name of a path below its prefix.
fn target_name(path: &[String], scheme: &NamingScheme, note: &mut Option<String>) -> String {
    if path.len() == 1 && path[0].eq_ignore_ascii_case("INBOX") {
        return "INBOX".into();
    }
    let delimiter = scheme.delimiter.unwrap_or('/');
    let parts: Vec<String> = path
        .iter()
        .map(|part| {
            if part.contains(delimiter) {
                *note = Some(format!(
                    "`{delimiter}` in `{part}` is the target's separator: written as `_`"
                ));
                part.replace(delimiter, "_")
            } else {
                part.clone()
            }
        })
        .collect();
    format!("{}{}", scheme.prefix, parts.join(&delimiter.to_string()))
}

fn encode(name: &str, scheme: &NamingScheme) -> Vec<u8> {
    if scheme.utf8 {
        name.as_bytes().to_vec()
    } else {
        mutf7::encode(name).into_bytes()
    }
}

/// Maps every selectable source folder. `explicit` maps source names (as listed, or below
/// the prefix) to target names (as the target lists them, UTF-8).
pub fn map_folders(
    source: &[Folder],
    source_scheme: &NamingScheme,
    target: &[Folder],
    target_scheme: &NamingScheme,
    explicit: &[(String, String)],
) -> Vec<FolderMapping> {
    // Remapped path prefixes: source path -> target path (below the target prefix).
    let mut remaps: Vec<(Vec<String>, Vec<String>, String)> = Vec::new();
    let mut special_taken: HashMap<SpecialUse, ()> = HashMap::new();
    for folder in source {
        let path = source_path(folder, source_scheme);
        if let Some((_, to)) = explicit
            .iter()
            .find(|(from, _)| *from == folder.name || *from == path.join("/"))
        {
            let to_folder = Folder {
                raw_name: Vec::new(),
                name: to.clone(),
                delimiter: target_scheme.delimiter,
                attributes: vec![],
                special_use: None,
                selectable: true,
                status: None,
            };
            remaps.push((
                path,
                source_path(&to_folder, target_scheme),
                format!("mapped by --map to `{to}`"),
            ));
            continue;
        }
        let Some(use_) = folder.special_use else {
            continue;
        };
        if matches!(
            use_,
            SpecialUse::All | SpecialUse::Flagged | SpecialUse::Important
        ) || special_taken.contains_key(&use_)
        {
            continue;
        }
        if let Some(target_folder) = target.iter().find(|t| t.special_use == Some(use_)) {
            special_taken.insert(use_, ());
            let to = source_path(target_folder, target_scheme);
            if to != path {
                remaps.push((
                    path,
                    to,
                    format!(
                        "special folder {use_}: the target's is `{}`",
                        target_folder.name
                    ),
                ));
            }
        }
    }
    remaps.sort_by_key(|(from, _, _)| std::cmp::Reverse(from.len()));

    source
        .iter()
        .filter(|f| f.selectable)
        .map(|folder| {
            let path = source_path(folder, source_scheme);
            let mut note = None;
            let mapped = remaps
                .iter()
                .find(|(from, _, _)| path.len() >= from.len() && path[..from.len()] == from[..]);
            let target_path = match mapped {
                Some((from, to, why)) => {
                    note = Some(why.clone());
                    let mut p = to.clone();
                    p.extend_from_slice(&path[from.len()..]);
                    p
                }
                None => path,
            };
            let name = target_name(&target_path, target_scheme, &mut note);
            // An existing target folder with this name keeps its exact raw bytes.
            let raw = target
                .iter()
                .find(|t| t.name == name)
                .map(|t| t.raw_name.clone())
                .unwrap_or_else(|| encode(&name, target_scheme));
            FolderMapping {
                source_name: folder.name.clone(),
                source_raw: folder.raw_name.clone(),
                target_name: name,
                target_raw: raw,
                special_use: folder.special_use,
                note,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str, delimiter: char, special: Option<SpecialUse>) -> Folder {
        Folder {
            raw_name: mutf7::encode(name).into_bytes(),
            name: name.into(),
            delimiter: Some(delimiter),
            attributes: vec![],
            special_use: special,
            selectable: true,
            status: None,
        }
    }

    #[test]
    fn slash_layout_to_inbox_dot_with_exchange_names() {
        let source_scheme = NamingScheme {
            prefix: String::new(),
            delimiter: Some('/'),
            utf8: false,
        };
        let target_scheme = NamingScheme {
            prefix: "INBOX.".into(),
            delimiter: Some('.'),
            utf8: false,
        };
        let source = vec![
            folder("INBOX", '/', None),
            folder("Sent", '/', Some(SpecialUse::Sent)),
            folder("Sent/2019", '/', None),
            folder("Trash", '/', Some(SpecialUse::Trash)),
            folder("Archive/2019/Q1", '/', None),
            folder("Projekte Übersicht", '/', None),
            folder("v1.2 notes", '/', None),
            folder("Old", '/', None),
        ];
        let target = vec![
            folder("INBOX", '.', None),
            folder("INBOX.Sent Items", '.', Some(SpecialUse::Sent)),
            folder("INBOX.Deleted Items", '.', Some(SpecialUse::Trash)),
        ];
        let explicit = vec![("Old".to_string(), "INBOX.Archive.Old".to_string())];
        let map = map_folders(&source, &source_scheme, &target, &target_scheme, &explicit);
        let names: Vec<(&str, &str)> = map
            .iter()
            .map(|m| (m.source_name.as_str(), m.target_name.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("INBOX", "INBOX"),
                ("Sent", "INBOX.Sent Items"),
                ("Sent/2019", "INBOX.Sent Items.2019"),
                ("Trash", "INBOX.Deleted Items"),
                ("Archive/2019/Q1", "INBOX.Archive.2019.Q1"),
                ("Projekte Übersicht", "INBOX.Projekte Übersicht"),
                ("v1.2 notes", "INBOX.v1_2 notes"),
                ("Old", "INBOX.Archive.Old"),
            ]
        );
        assert_eq!(map[5].target_raw, b"INBOX.Projekte &ANw-bersicht".to_vec());
        assert!(map[6].note.as_deref().unwrap().contains("separator"));
    }

    /// Issue 19: a prefix whose length falls inside a character of a name used to panic.
    #[test]
    fn a_prefix_that_splits_a_character_is_no_prefix() {
        let scheme = NamingScheme {
            prefix: "I".into(),
            delimiter: Some('/'),
            utf8: true,
        };
        assert_eq!(
            source_path(&folder("Äpfel/Birnen", '/', None), &scheme),
            vec!["Äpfel".to_string(), "Birnen".to_string()]
        );
        let scheme = NamingScheme {
            prefix: "INBOX.".into(),
            delimiter: Some('.'),
            utf8: true,
        };
        assert_eq!(
            source_path(&folder("日本語.x", '.', None), &scheme),
            vec!["日本語".to_string(), "x".to_string()]
        );
    }

    #[test]
    fn dot_with_prefix_back_to_slash() {
        let source_scheme = NamingScheme {
            prefix: "INBOX.".into(),
            delimiter: Some('.'),
            utf8: false,
        };
        let target_scheme = NamingScheme {
            prefix: String::new(),
            delimiter: Some('/'),
            utf8: false,
        };
        let source = vec![
            folder("INBOX", '.', None),
            folder("INBOX.Archive.2019", '.', None),
            folder("INBOX.Sent Items", '.', Some(SpecialUse::Sent)),
        ];
        let target = vec![
            folder("INBOX", '/', None),
            folder("Sent", '/', Some(SpecialUse::Sent)),
        ];
        let map = map_folders(&source, &source_scheme, &target, &target_scheme, &[]);
        let names: Vec<&str> = map.iter().map(|m| m.target_name.as_str()).collect();
        assert_eq!(names, vec!["INBOX", "Archive/2019", "Sent"]);
    }
}
