//! `mf-testservers`: two filled Dovecot instances for benchmarks, kept running until
//! told to stop.
//!
//! ```text
//! mf-testservers --users 4 --messages 5000 --folders 8 --big 4 --out servers.json
//! ```
//!
//! Starts a *source* and a *target* Dovecot 2.3 on loopback (default options: maildir
//! LAYOUT=fs, separator `/`, no prefix), with users `bench1`..`benchN` (passwords
//! `bench1pw`..) on both and, on the target only, one fresh user per benchmarked tool
//! (`bench1_mbsync`, password `bench1_mbsyncpw`, ...; see `--target-tools`). Every
//! source user gets its own [`bulk_corpus`] (seed `S + i`) of `M` messages in `F`
//! folders plus `K` messages of 5–25 MB ([`big_messages`]). Users are filled in
//! parallel, one thread (and one IMAP connection) per user.
//!
//! When everything is loaded, the description of both servers is written (atomically)
//! to the `--out` file as JSON, `ready` is printed on stderr, and the program waits
//! until standard input reaches end-of-file (unless `--no-stdin`) or it receives
//! SIGTERM, SIGINT or SIGHUP; then it stops both servers and removes their
//! directories (unless `MAILFERRY_KEEP_SERVERS=1`). The same signals or end of input
//! during the fill abort it cleanly. If a master process dies or an instance
//! directory disappears meanwhile (another test run cleaning `/tmp/mailferry-testkit`),
//! it notices within 2 s, stops the other server and exits with status 1.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Instant;

use mailferry_testkit::corpus::big_messages;
use mailferry_testkit::{bulk_corpus, stop_all, Corpus, CorpusFolder, Dovecot, DovecotBuilder};
use serde_json::json;

const USAGE: &str = "\
usage: mf-testservers [--users N] [--messages M] [--folders F] [--big K] [--seed S]
                      [--target-tools LIST] [--no-stdin] --out FILE.json

Starts a source and a target Dovecot on 127.0.0.1, creates users bench1..benchN
(passwords bench1pw..) on both, fills each source user with M realistic messages in
F folders plus K messages of 5-25 MB, writes FILE.json, then runs until stdin closes
or SIGTERM/SIGINT/SIGHUP arrives, and stops both servers.

  --users N          users per server (default 4)
  --messages M       bulk messages per source user (default 5000)
  --folders F        folders per source user, INBOX included (default 8)
  --big K            extra 5-25 MB messages per source user (default 0)
  --seed S           corpus seed; user i uses S+i (default 1)
  --target-tools L   comma-separated tool names; for each, the target also gets users
                     bench<i>_<tool> with password bench<i>_<tool>pw
                     (default mailferry,mbsync,doveadm; empty for none)
  --no-stdin         ignore stdin; only a signal stops the servers
  --postgres         also start a PostgreSQL (its URL in FILE.json as postgres_url)
  --out FILE         where to write the JSON description (required)";

struct Options {
    users: usize,
    messages: usize,
    folders: usize,
    big: usize,
    seed: u64,
    target_tools: Vec<String>,
    watch_stdin: bool,
    postgres: bool,
    out: PathBuf,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        users: 4,
        messages: 5000,
        folders: 8,
        big: 0,
        seed: 1,
        target_tools: vec!["mailferry".into(), "mbsync".into(), "doveadm".into()],
        watch_stdin: true,
        postgres: false,
        out: PathBuf::new(),
    };
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs {what}"))
        };
        let number = |text: String| -> Result<u64, String> {
            text.parse::<u64>()
                .map_err(|_| format!("{name}: `{text}` is not a non-negative integer"))
        };
        match name.as_str() {
            "--users" => options.users = number(value("a number")?)? as usize,
            "--messages" => options.messages = number(value("a number")?)? as usize,
            "--folders" => options.folders = number(value("a number")?)? as usize,
            "--big" => options.big = number(value("a number")?)? as usize,
            "--seed" => options.seed = number(value("a number")?)?,
            "--target-tools" => {
                options.target_tools = value("a list")?
                    .split(',')
                    .map(str::trim)
                    .filter(|tool| !tool.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "--no-stdin" => options.watch_stdin = false,
            "--postgres" => options.postgres = true,
            "--out" => out = Some(PathBuf::from(value("a file name")?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    options.out = out.ok_or("--out FILE.json is required")?;
    if options.users == 0 {
        return Err("--users must be at least 1".into());
    }
    if options.folders == 0 {
        return Err("--folders must be at least 1".into());
    }
    for tool in &options.target_tools {
        if !tool
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "--target-tools: `{tool}` may only hold letters, digits, `-` and `_`"
            ));
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("mf-testservers: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mf-testservers: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Set by the watcher on a signal or end of stdin.
struct Shutdown {
    requested: AtomicBool,
    reason: std::sync::Mutex<String>,
}

impl Shutdown {
    fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}

fn run(options: &Options) -> Result<(), String> {
    // Watch signals and stdin from the very start, so that a SIGTERM during the
    // (long) fill still stops the servers instead of orphaning them.
    let shutdown = Arc::new(Shutdown {
        requested: AtomicBool::new(false),
        reason: std::sync::Mutex::new(String::new()),
    });
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the signal watcher: {e}"))?;
    start_watcher(&runtime, options.watch_stdin, shutdown.clone(), stop_tx)?;

    let started = Instant::now();
    let names: Vec<(String, String)> = (1..=options.users)
        .map(|i| (format!("bench{i}"), format!("bench{i}pw")))
        .collect();
    let mut source_builder = DovecotBuilder::new();
    let mut target_builder = DovecotBuilder::new();
    let mut target_users = Vec::new();
    for (user, password) in &names {
        source_builder = source_builder.user(user, password);
        target_builder = target_builder.user(user, password);
        for tool in &options.target_tools {
            let name = format!("{user}_{tool}");
            let pw = format!("{name}pw");
            target_builder = target_builder.user(&name, &pw);
            target_users.push(json!({
                "user": name, "password": pw, "source_user": user, "tool": tool,
            }));
        }
    }
    let (source, target) = thread::scope(|scope| {
        let source = scope.spawn(|| source_builder.start());
        let target = scope.spawn(|| target_builder.start());
        (source.join(), target.join())
    });
    let source = source
        .map_err(|_| "starting the source panicked".to_owned())?
        .map_err(|e| format!("source dovecot: {e}"))?;
    let target = match target {
        Ok(Ok(target)) => target,
        Ok(Err(e)) => {
            stop_all([source]);
            return Err(format!("target dovecot: {e}"));
        }
        Err(_) => {
            stop_all([source]);
            return Err("starting the target panicked".into());
        }
    };
    eprintln!(
        "mf-testservers: source IMAP 127.0.0.1:{} ({}), target IMAP 127.0.0.1:{} ({}), started in {:.1} s",
        source.imap_port(),
        source.dir().display(),
        target.imap_port(),
        target.dir().display(),
        started.elapsed().as_secs_f64()
    );

    let postgres = match options.postgres {
        true => match mailferry_testkit::Postgres::start() {
            Ok(postgres) => Some(postgres),
            Err(e) => {
                stop_all([source, target]);
                return Err(format!("postgres: {e}"));
            }
        },
        false => None,
    };
    let postgres_url = postgres.as_ref().map(|p| p.url());
    let result = fill_and_describe(
        options,
        &names,
        &target_users,
        (&source, &target, postgres_url),
        &shutdown,
    );
    let outcome = match result {
        Ok(()) if !shutdown.is_requested() => {
            eprintln!("mf-testservers: ready; {}", stop_hint(options.watch_stdin));
            wait_for_stop(&stop_rx, &[("source", &source), ("target", &target)])
        }
        Ok(()) => Ok(()),
        Err(message) => Err(message),
    };
    let reason = shutdown
        .reason
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    eprintln!(
        "mf-testservers: stopping both servers{}",
        if reason.is_empty() {
            String::new()
        } else {
            format!(" ({reason})")
        }
    );
    let stopping = Instant::now();
    stop_all([source, target]);
    drop(postgres);
    eprintln!(
        "mf-testservers: stopped in {:.1} s",
        stopping.elapsed().as_secs_f64()
    );
    runtime.shutdown_background();
    outcome
}

/// Waits until the watcher fires; every 2 s checks that both masters still run and
/// their directories still exist (other test runs on the machine could remove
/// them), and gives up with an error if not.
fn wait_for_stop(stop: &mpsc::Receiver<()>, servers: &[(&str, &Dovecot)]) -> Result<(), String> {
    let masters: Vec<Option<u32>> = servers.iter().map(|(_, d)| master_pid(d.dir())).collect();
    loop {
        match stop.recv_timeout(std::time::Duration::from_secs(2)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        for ((name, server), master) in servers.iter().zip(&masters) {
            if !server.config_path().exists() {
                return Err(format!(
                    "the {name} server's directory {} has disappeared (removed by something else?)",
                    server.dir().display()
                ));
            }
            if let Some(pid) = master {
                if !process_alive(*pid) {
                    return Err(format!(
                        "the {name} server's master process {pid} has exited (killed by something else?)"
                    ));
                }
            }
        }
    }
}

fn stop_hint(watch_stdin: bool) -> &'static str {
    if watch_stdin {
        "close stdin or send SIGTERM/SIGINT to stop"
    } else {
        "send SIGTERM/SIGINT to stop"
    }
}

/// Spawns the task that waits for SIGTERM, SIGINT, SIGHUP or (optionally) the end of
/// stdin, then sets `shutdown` and sends on `stop`.
fn start_watcher(
    runtime: &tokio::runtime::Runtime,
    watch_stdin: bool,
    shutdown: Arc<Shutdown>,
    stop: mpsc::Sender<()>,
) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let _guard = runtime.enter();
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT: {e}"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| format!("SIGHUP: {e}"))?;
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
    if watch_stdin {
        // A plain thread: reading stdin blocks, and we only care about EOF (or error).
        thread::Builder::new()
            .name("stdin-watch".into())
            .spawn(move || {
                let mut stdin = std::io::stdin().lock();
                let mut buffer = [0u8; 4096];
                while matches!(stdin.read(&mut buffer), Ok(n) if n > 0) {}
                let _ = eof_tx.send(());
            })
            .map_err(|e| format!("cannot watch stdin: {e}"))?;
    } else {
        // Keep the sender alive forever so the receiver never completes.
        std::mem::forget(eof_tx);
    }
    runtime.spawn(async move {
        let reason = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv() => "SIGHUP",
            _ = eof_rx => "end of stdin",
        };
        if let Ok(mut slot) = shutdown.reason.lock() {
            *slot = reason.to_owned();
        }
        shutdown.requested.store(true, Ordering::SeqCst);
        let _ = stop.send(());
    });
    Ok(())
}

/// What one user got.
struct Filled {
    user: String,
    messages: usize,
    bytes: u64,
}

fn fill_and_describe(
    options: &Options,
    names: &[(String, String)],
    target_users: &[serde_json::Value],
    (source, target, postgres_url): (&Dovecot, &Dovecot, Option<String>),
    shutdown: &Shutdown,
) -> Result<(), String> {
    let started = Instant::now();
    eprintln!(
        "mf-testservers: filling {} source users with {} messages in {} folders + {} big (5-25 MB) each",
        names.len(),
        options.messages,
        options.folders,
        options.big
    );
    let results: Vec<Result<Filled, String>> = thread::scope(|scope| {
        let handles: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(index, (user, password))| {
                let seed = options.seed.wrapping_add(index as u64 + 1);
                scope.spawn(move || fill_user(options, seed, user, password, source, shutdown))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a fill thread panicked".into()))
            })
            .collect()
    });
    let mut filled = Vec::new();
    for result in results {
        filled.push(result?);
    }
    if shutdown.is_requested() {
        return Ok(());
    }
    let messages: usize = filled.iter().map(|f| f.messages).sum();
    let bytes: u64 = filled.iter().map(|f| f.bytes).sum();
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "mf-testservers: filled {messages} messages, {:.1} MB in {elapsed:.1} s ({:.0} msgs/s, {:.1} MB/s)",
        bytes as f64 / 1e6,
        messages as f64 / elapsed.max(1e-9),
        bytes as f64 / 1e6 / elapsed.max(1e-9),
    );

    // Check with doveadm that every message arrived.
    for f in &filled {
        let status = source
            .doveadm(&[
                "-f", "tab", "mailbox", "status", "-u", &f.user, "messages", "*",
            ])
            .map_err(|e| e.to_string())?;
        let stored: usize = status
            .lines()
            .skip(1)
            .filter_map(|line| line.rsplit('\t').next()?.trim().parse::<usize>().ok())
            .sum();
        if stored != f.messages {
            return Err(format!(
                "user {} holds {stored} messages on the source, expected {}",
                f.user, f.messages
            ));
        }
    }

    let server = |d: &Dovecot| {
        json!({
            "imap_port": d.imap_port(),
            "imaps_port": d.imaps_port(),
            "config": d.config_path(),
            "dir": d.dir(),
            "log": d.log_path(),
            "master_pid": master_pid(d.dir()),
            "separator": d.separator().to_string(),
            "prefix": d.prefix(),
        })
    };
    let description = json!({
        "source": server(source),
        "target": server(target),
        "users": names.iter().map(|(u, p)| json!({"user": u, "password": p})).collect::<Vec<_>>(),
        "target_users": target_users,
        "messages": messages,
        "bytes": bytes,
        "per_user": filled.iter().map(|f| json!({
            "user": f.user, "messages": f.messages, "bytes": f.bytes,
        })).collect::<Vec<_>>(),
        "options": {
            "users": options.users,
            "messages": options.messages,
            "folders": options.folders,
            "big": options.big,
            "seed": options.seed,
        },
        "pid": std::process::id(),
        "fill_seconds": elapsed,
        "postgres_url": postgres_url,
    });
    write_atomically(&options.out, &description)
}

/// Builds `user`'s corpus and loads it one folder at a time, checking for a
/// shutdown request between folders.
fn fill_user(
    options: &Options,
    seed: u64,
    user: &str,
    password: &str,
    source: &Dovecot,
    shutdown: &Shutdown,
) -> Result<Filled, String> {
    let mut corpus = bulk_corpus(seed, options.messages, options.folders);
    let folder_count = corpus.folders.len();
    for (index, message) in big_messages(seed, options.big, options.messages)
        .into_iter()
        .enumerate()
    {
        // Spread the big ones over the folders, INBOX first.
        corpus.folders[index % folder_count].messages.push(message);
    }
    let messages = corpus.message_count();
    let bytes = corpus.total_bytes();
    for folder in std::mem::take(&mut corpus.folders) {
        if shutdown.is_requested() {
            break;
        }
        let name = folder.name.clone();
        let one = Corpus {
            folders: vec![CorpusFolder {
                name: folder.name,
                messages: folder.messages,
            }],
        };
        source
            .fill(user, password, &one)
            .map_err(|e| format!("filling `{name}` of {user}: {e}"))?;
    }
    Ok(Filled {
        user: user.to_owned(),
        messages,
        bytes,
    })
}

/// Whether `pid` runs: it exists and is not a zombie (an exited child of ours that
/// nobody has waited for yet).
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Dovecot writes its master's pid to `base_dir/master.pid` (`<dir>/run`).
fn master_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("run").join("master.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn write_atomically(path: &Path, value: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())? + "\n";
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, text)
        .map_err(|e| format!("cannot write {}: {e}", temporary.display()))?;
    std::fs::rename(&temporary, path).map_err(|e| {
        format!(
            "cannot rename {} to {}: {e}",
            temporary.display(),
            path.display()
        )
    })
}
