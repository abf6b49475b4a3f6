//! `mailferry probe`: checks access to an IMAP account before a migration.
//!
//! Prints the greeting and the server's ID, capabilities, namespaces and separator, every
//! folder with its special use, message count and size, and how long each step took.
//! The password comes from `MAILFERRY_PASSWORD`, `--password-file`, or a prompt.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use mailferry_imap::{FetchRange, Session, SessionOptions};
use serde::Serialize;

use super::endpoint_args::{resolve, ConnectArgs, LoginArgs};

/// Check access to an IMAP account: server, capabilities, folders, sizes, timings.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The account: imap://USER@HOST[:PORT] (STARTTLS) or imaps://USER@HOST[:PORT] (TLS).
    /// The password is read from MAILFERRY_PASSWORD, --password-file, or a prompt.
    pub url: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub login: LoginArgs,
    /// Print JSON for scripts instead of text.
    #[arg(long)]
    pub json: bool,
    /// Do not add up message sizes on servers without STATUS=SIZE (faster on huge accounts).
    #[arg(long)]
    pub no_sizes: bool,
}

#[derive(Debug, Serialize)]
struct ProbeReport {
    server: String,
    tls: bool,
    /// COMPRESS=DEFLATE is active (only tried with `--compress`).
    compression: bool,
    #[serde(skip)]
    compression_asked: bool,
    greeting: String,
    id: Vec<(String, Option<String>)>,
    account: String,
    capabilities: Vec<String>,
    enabled: Vec<String>,
    namespaces: Vec<NamespaceReport>,
    folders: Vec<FolderReport>,
    total_messages: u64,
    total_bytes: Option<u64>,
    timings_ms: Vec<(String, u64)>,
}

#[derive(Debug, Serialize)]
struct NamespaceReport {
    kind: &'static str,
    prefix: String,
    separator: Option<String>,
}

#[derive(Debug, Serialize)]
struct FolderReport {
    name: String,
    raw_name: String,
    special_use: Option<String>,
    selectable: bool,
    messages: Option<u32>,
    bytes: Option<u64>,
    uid_validity: Option<u32>,
    uid_next: Option<u32>,
    highest_modseq: Option<u64>,
}

pub async fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let (endpoint, auth) = resolve(
        &args.url,
        &args.connect,
        &args.login,
        "MAILFERRY_PASSWORD",
        "server",
    )?;
    let options = SessionOptions {
        timeout: Duration::from_secs(args.connect.timeout),
        ..SessionOptions::default()
    };
    let mut timings = Vec::new();
    let mut step = Instant::now();
    let mut lap = |name: &str, timings: &mut Vec<(String, u64)>| {
        timings.push((name.to_string(), step.elapsed().as_millis() as u64));
        step = Instant::now();
    };

    let mut session = Session::connect(&endpoint, options)
        .await
        .with_context(|| format!("cannot open a connection to `{}`", endpoint.addr()))?;
    lap("connect, TLS and greeting", &mut timings);
    session.login(&auth).await.context("cannot log in")?;
    lap("login", &mut timings);
    if args.connect.compress {
        session
            .compress()
            .await
            .context("cannot turn on compression")?;
        lap("compress", &mut timings);
    }
    let enabled = session
        .enable(&["QRESYNC", "CONDSTORE", "UTF8=ACCEPT"])
        .await
        .context("ENABLE failed")?;
    let id = session.id().await.unwrap_or_default();
    lap("capabilities, ENABLE and ID", &mut timings);
    let namespaces = session
        .namespace()
        .await
        .context("NAMESPACE failed")?
        .unwrap_or_default();
    lap("namespace", &mut timings);
    let mut folders = session
        .list_folders(true)
        .await
        .context("cannot list the folders")?;
    folders.sort_by(|a, b| {
        (!a.raw_name.eq_ignore_ascii_case(b"INBOX"), &a.name)
            .cmp(&(!b.raw_name.eq_ignore_ascii_case(b"INBOX"), &b.name))
    });
    lap(
        if session.capabilities().has("LIST-STATUS") {
            "list with status (LIST-STATUS)"
        } else {
            "list, then status per folder"
        },
        &mut timings,
    );

    let mut reports = Vec::new();
    let mut sizes_known = true;
    for folder in &folders {
        let status = folder.status.clone().unwrap_or_default();
        let mut bytes = status.size;
        if bytes.is_none() && folder.selectable && !args.no_sizes {
            if status.messages == Some(0) {
                bytes = Some(0);
            } else {
                session
                    .select(&folder.raw_name, true, None)
                    .await
                    .with_context(|| format!("cannot open the folder `{}`", folder.name))?;
                let metas = session
                    .fetch_meta(FetchRange::All, None, false)
                    .await
                    .with_context(|| {
                        format!("cannot read the message sizes in `{}`", folder.name)
                    })?;
                bytes = Some(metas.iter().map(|m| m.size).sum());
            }
        }
        if bytes.is_none() && folder.selectable {
            sizes_known = false;
        }
        reports.push(FolderReport {
            name: folder.name.clone(),
            raw_name: String::from_utf8_lossy(&folder.raw_name).into_owned(),
            special_use: folder.special_use.map(|s| s.to_string()),
            selectable: folder.selectable,
            messages: status.messages,
            bytes,
            uid_validity: status.uid_validity.map(u32::from),
            uid_next: status.uid_next,
            highest_modseq: status.highest_modseq,
        });
    }
    if !args.no_sizes && !session.capabilities().has("STATUS=SIZE") {
        lap(
            "sizes (EXAMINE and FETCH RFC822.SIZE per folder)",
            &mut timings,
        );
    }
    let mut ns_reports = Vec::new();
    for (kind, group) in [
        ("personal", &namespaces.personal),
        ("other users", &namespaces.other),
        ("shared", &namespaces.shared),
    ] {
        for ns in group {
            ns_reports.push(NamespaceReport {
                kind,
                prefix: String::from_utf8_lossy(&ns.prefix).into_owned(),
                separator: ns.delimiter.map(String::from),
            });
        }
    }
    let report = ProbeReport {
        server: endpoint.addr(),
        tls: session.is_tls(),
        compression: session.is_compressed(),
        compression_asked: args.connect.compress,
        greeting: session.greeting().to_string(),
        id,
        account: auth.account().to_string(),
        capabilities: session.capabilities().iter().map(str::to_string).collect(),
        enabled,
        namespaces: ns_reports,
        total_messages: reports
            .iter()
            .filter_map(|f| f.messages)
            .map(u64::from)
            .sum(),
        total_bytes: sizes_known.then(|| reports.iter().filter_map(|f| f.bytes).sum()),
        folders: reports,
        timings_ms: timings,
    };
    session.logout().await;

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(r: &ProbeReport) {
    println!(
        "server        {} ({})",
        r.server,
        if r.tls { "TLS" } else { "NOT encrypted" }
    );
    if r.compression {
        println!("compression  DEFLATE");
    } else if r.compression_asked {
        println!("compression  off (the server does not offer COMPRESS=DEFLATE or declined)");
    }
    println!("greeting      {}", r.greeting);
    if !r.id.is_empty() {
        let id: Vec<String> =
            r.id.iter()
                .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("NIL")))
                .collect();
        println!("server id     {}", id.join(", "));
    }
    println!("account       {}", r.account);
    println!("capabilities  {}", r.capabilities.join(" "));
    if !r.enabled.is_empty() {
        println!("enabled       {}", r.enabled.join(" "));
    }
    for ns in &r.namespaces {
        println!(
            "namespace     {:<12} prefix \"{}\" separator {}",
            ns.kind,
            ns.prefix,
            ns.separator
                .as_deref()
                .map(|s| format!("\"{s}\""))
                .unwrap_or_else(|| "none".into())
        );
    }
    println!();
    let width = r
        .folders
        .iter()
        .map(|f| f.name.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    println!(
        "{:<width$}  {:<10}  {:>9}  {:>12}",
        "FOLDER", "SPECIAL", "MESSAGES", "SIZE"
    );
    for f in &r.folders {
        let messages = f.messages.map(|m| m.to_string()).unwrap_or_else(|| {
            if f.selectable {
                "?".into()
            } else {
                "-".into()
            }
        });
        let bytes = f.bytes.map(human_bytes).unwrap_or_else(|| {
            if f.selectable {
                "?".into()
            } else {
                "-".into()
            }
        });
        let pad = width - f.name.chars().count();
        println!(
            "{}{}  {:<10}  {:>9}  {:>12}",
            f.name,
            " ".repeat(pad),
            f.special_use.as_deref().unwrap_or(""),
            messages,
            bytes
        );
    }
    let total = r
        .total_bytes
        .map(human_bytes)
        .unwrap_or_else(|| "unknown size".into());
    println!(
        "\n{} folders, {} messages, {}",
        r.folders.len(),
        r.total_messages,
        total
    );
    println!();
    for (name, ms) in &r.timings_ms {
        println!("{:>7} ms  {name}", ms);
    }
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
