//! The settings file of `mailferry serve` and `mailferry worker` (`mailferry.toml`): flat
//! TOML, one key per setting, the same names as the flags with `_` for `-`.
//!
//! Layers, weakest first: built-in defaults, this file, `MAILFERRY_*` environment
//! variables, command-line flags. This module only reads the file; `cmd::serve` does the
//! layering. An unknown key is a warning (naming the key and the file), so that a file
//! written for a newer version still works; a value of the wrong type is an error naming
//! the key, the file and the line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use toml::{Spanned, Value};

/// The file's name in the data directory, read when no `--config` is given.
pub const DEFAULT_NAME: &str = "mailferry.toml";

/// Every key the file may have.
pub const KEYS: [&str; 12] = [
    "data_dir",
    "listen",
    "database_url",
    "workers",
    "connections",
    "per_host_connections",
    "max_passes_per_host",
    "lease_seconds",
    "poll_ms",
    "time_zone",
    "no_insecure",
    "licence_public_key",
];

/// What a settings file says; `None` where it says nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub database_url: Option<String>,
    pub workers: Option<usize>,
    pub connections: Option<usize>,
    pub per_host_connections: Option<usize>,
    pub max_passes_per_host: Option<usize>,
    pub lease_seconds: Option<u64>,
    pub poll_ms: Option<u64>,
    pub time_zone: Option<String>,
    pub no_insecure: Option<bool>,
    pub licence_public_key: Option<String>,
}

/// Reads and checks the file at `path`; unknown keys are reported on stderr as warnings.
pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the settings file `{}`", path.display()))?;
    let (config, warnings) = parse(&text, path)?;
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    Ok(config)
}

/// Parses the text of the file at `path` (the path is only for messages and for relative
/// `data_dir`s, which are taken relative to the file's directory). Returns the settings and
/// the warnings.
pub fn parse(text: &str, path: &Path) -> anyhow::Result<(FileConfig, Vec<String>)> {
    let shown = path.display();
    let table: BTreeMap<String, Spanned<Value>> = toml::from_str(text).map_err(|e| {
        let place = e
            .span()
            .map(|span| format!(" at line {}", line_of(text, span.start)))
            .unwrap_or_default();
        anyhow::anyhow!(
            "the settings file `{shown}` is not valid TOML{place}: {}",
            e.message()
        )
    })?;
    let mut config = FileConfig::default();
    let mut warnings = Vec::new();
    for (key, value) in &table {
        let line = line_of(text, value.span().start);
        let wrong = |wanted: &str| {
            anyhow::anyhow!(
                "`{key}` in `{shown}` line {line} must be {wanted}, not {}",
                describe(value.get_ref())
            )
        };
        match key.as_str() {
            "data_dir" => {
                let dir = PathBuf::from(string(value.get_ref()).ok_or_else(|| wrong("a path"))?);
                let dir = match path.parent() {
                    Some(base) if dir.is_relative() && !base.as_os_str().is_empty() => {
                        base.join(dir)
                    }
                    _ => dir,
                };
                config.data_dir = Some(dir);
            }
            "listen" => {
                let text = string(value.get_ref())
                    .ok_or_else(|| wrong("an address such as \"127.0.0.1:8080\""))?;
                config.listen = Some(text.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "`listen` in `{shown}` line {line} must be an address such as \
                         \"127.0.0.1:8080\", not \"{text}\""
                    )
                })?);
            }
            "database_url" => {
                config.database_url = Some(
                    string(value.get_ref())
                        .ok_or_else(|| wrong("a URL such as \"postgres://...\""))?
                        .to_string(),
                );
            }
            "workers"
            | "connections"
            | "per_host_connections"
            | "max_passes_per_host"
            | "lease_seconds"
            | "poll_ms" => {
                let n = value
                    .get_ref()
                    .as_integer()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| wrong("a whole number, 0 or more"))?;
                match key.as_str() {
                    "lease_seconds" => config.lease_seconds = Some(n),
                    "poll_ms" => config.poll_ms = Some(n),
                    other => {
                        let n = usize::try_from(n).map_err(|_| wrong("a smaller number"))?;
                        match other {
                            "workers" => config.workers = Some(n),
                            "connections" => config.connections = Some(n),
                            "max_passes_per_host" => config.max_passes_per_host = Some(n),
                            _ => config.per_host_connections = Some(n),
                        }
                    }
                }
            }
            "time_zone" => {
                let zone = string(value.get_ref())
                    .ok_or_else(|| wrong("a time zone name such as \"Europe/Berlin\""))?;
                if jiff::tz::TimeZone::get(zone).is_err() {
                    bail!(
                        "`time_zone` in `{shown}` line {line}: `{zone}` is not a time zone: use \
                         an IANA name such as Europe/Berlin or UTC"
                    );
                }
                config.time_zone = Some(zone.to_string());
            }
            "licence_public_key" => {
                let key = string(value.get_ref()).ok_or_else(|| {
                    wrong("the public key as `mailferry licence keygen` prints it")
                })?;
                if let Err(e) = mailferry_service::licence::parse_public_key(key) {
                    bail!("`licence_public_key` in `{shown}` line {line}: {e}");
                }
                config.licence_public_key = Some(key.to_string());
            }
            "no_insecure" => {
                config.no_insecure = Some(
                    value
                        .get_ref()
                        .as_bool()
                        .ok_or_else(|| wrong("true or false"))?,
                );
            }
            _ => {
                let hint = KEYS
                    .iter()
                    .find(|known| similar(known, key))
                    .map(|known| format!(" (did you mean `{known}`?)"))
                    .unwrap_or_default();
                warnings.push(format!(
                    "unknown key `{key}` in `{shown}` line {line} is ignored{hint}; known keys: {}",
                    KEYS.join(", ")
                ));
            }
        }
    }
    Ok((config, warnings))
}

fn string(value: &Value) -> Option<&str> {
    value.as_str()
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string \"{s}\""),
        Value::Integer(n) => format!("the number {n}"),
        Value::Float(n) => format!("the number {n}"),
        Value::Boolean(b) => format!("{b}"),
        Value::Datetime(d) => format!("the date {d}"),
        Value::Array(_) => "a list".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Close enough to suggest: ignoring case, `-` and `_`, at most two edits apart.
fn similar(known: &str, given: &str) -> bool {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect::<Vec<_>>()
    };
    let (a, b) = (norm(known), norm(given));
    // Levenshtein distance, one row at a time.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()] <= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> (FileConfig, Vec<String>) {
        parse(text, Path::new("/etc/mailferry/mailferry.toml")).unwrap()
    }

    fn parse_err(text: &str) -> String {
        format!(
            "{:#}",
            parse(text, Path::new("/etc/mailferry/mailferry.toml")).unwrap_err()
        )
    }

    #[test]
    fn every_key_is_read() {
        let (config, warnings) = parse_ok(
            r#"
data_dir = "data"
listen = "0.0.0.0:9000"
database_url = "postgres://u@db/mailferry"
workers = 4
connections = 3
per_host_connections = 8
max_passes_per_host = 6
lease_seconds = 30
poll_ms = 500
time_zone = "Europe/Berlin"
no_insecure = true
"#,
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            config,
            FileConfig {
                data_dir: Some(PathBuf::from("/etc/mailferry/data")),
                listen: Some("0.0.0.0:9000".parse().unwrap()),
                database_url: Some("postgres://u@db/mailferry".into()),
                workers: Some(4),
                connections: Some(3),
                per_host_connections: Some(8),
                max_passes_per_host: Some(6),
                lease_seconds: Some(30),
                poll_ms: Some(500),
                time_zone: Some("Europe/Berlin".into()),
                no_insecure: Some(true),
                licence_public_key: None,
            }
        );
    }

    #[test]
    fn an_unknown_key_is_a_warning_naming_key_and_file() {
        let (config, warnings) = parse_ok("workers = 3\nwrokers = 5\nfancy = 1\n");
        assert_eq!(config.workers, Some(3));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("`fancy`") && warnings[0].contains("line 3"));
        assert!(warnings[1].contains("`wrokers`") && warnings[1].contains("`workers`?"));
        assert!(warnings[1].contains("/etc/mailferry/mailferry.toml"));
    }

    #[test]
    fn a_wrong_type_is_an_error_naming_key_file_and_line() {
        let err = parse_err("listen = \"127.0.0.1:1\"\n\nworkers = \"two\"\n");
        assert!(err.contains("`workers`"), "{err}");
        assert!(err.contains("/etc/mailferry/mailferry.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        let err = parse_err("no_insecure = \"yes\"");
        assert!(err.contains("`no_insecure`") && err.contains("true or false"));
        let err = parse_err("poll_ms = -5");
        assert!(err.contains("`poll_ms`") && err.contains("line 1"), "{err}");
        let err = parse_err("\nlisten = \"nowhere\"");
        assert!(err.contains("`listen`") && err.contains("line 2"), "{err}");
        let err = parse_err("time_zone = \"Mars/Olympus\"");
        assert!(
            err.contains("`time_zone`") && err.contains("Mars/Olympus"),
            "{err}"
        );
    }

    #[test]
    fn bad_toml_names_file_and_line() {
        let err = parse_err("workers = 2\nlisten = \n");
        assert!(err.contains("/etc/mailferry/mailferry.toml"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }
}
