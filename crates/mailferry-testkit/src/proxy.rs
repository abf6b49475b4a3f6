//! A TCP proxy between a client under test and a real server that breaks
//! connections on command: cut them all, cut one after some bytes, slow every chunk
//! down, or refuse new ones.
//!
//! ```no_run
//! use mailferry_testkit::{Dovecot, FaultProxy};
//!
//! let server = Dovecot::start()?;
//! let proxy = FaultProxy::start(([127, 0, 0, 1], server.imap_port()).into());
//! // Point the client at 127.0.0.1:proxy.port(), then:
//! proxy.cut_after_bytes(10_000); // the download breaks after 10 000 bytes
//! # Ok::<(), mailferry_testkit::TestkitError>(())
//! ```

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A fault-injecting TCP proxy on 127.0.0.1; stops (and closes every connection)
/// on drop.
#[derive(Debug)]
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    stopping: AtomicBool,
    refusing: AtomicBool,
    /// Sleep before forwarding each chunk, in microseconds.
    delay_micros: AtomicU64,
    /// While set, nothing is read or forwarded in either direction (a stalled server).
    stalled: AtomicBool,
    /// Client-to-server bytes still forwarded before a stall, when armed.
    stall_budget: Mutex<Option<u64>>,
    /// Downstream bytes still allowed before the next cut, when armed.
    cut_budget: Mutex<Option<u64>>,
    /// Client commands to answer with a NO [LIMIT], when armed.
    refusal: Mutex<Option<Refusal>>,
    /// Commands refused so far.
    refused: AtomicUsize,
    /// Per connection: tags whose server answer is to be turned into a refusal, with the
    /// refusal's status and code (` NO [LIMIT] `).
    rewrites: Mutex<HashMap<u64, Vec<Rewrite>>>,
    accepted: AtomicUsize,
    /// Bytes forwarded from server to client, over all connections.
    downstream: AtomicU64,
    /// Connections whose client has not closed its side yet, and the most there were.
    client_open: AtomicUsize,
    peak: AtomicUsize,
    next_id: AtomicU64,
    /// Both sockets of every live connection, so `cut_all` can reach them.
    live: Mutex<HashMap<u64, Connection>>,
}

/// A tag whose answer is to be replaced, and the status and code to put in (` NO [LIMIT] `).
type Rewrite = (Vec<u8>, Vec<u8>);

#[derive(Debug)]
struct Refusal {
    pattern: Vec<u8>,
    /// Match `pattern` anywhere in the command, not only at its start.
    anywhere: bool,
    answer: Vec<u8>,
    left: usize,
}

/// What the server answers to the stand-in command, and what the client gets instead.
/// (Dovecot answers a STATUS of a missing mailbox `NO Mailbox doesn't exist: ...`.)
const STAND_IN_ANSWER: &[u8] = b" NO ";
const THROTTLED_ANSWER: &[u8] = b" NO [LIMIT] ";

#[derive(Debug)]
struct Connection {
    client: TcpStream,
    server: TcpStream,
    /// Pump threads still running; the last one removes the entry.
    pumps: Arc<AtomicUsize>,
}

impl Connection {
    fn close(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards every connection to `upstream`.
    ///
    /// # Panics
    ///
    /// If no port on 127.0.0.1 can be bound (a test helper: the test cannot go on).
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .expect("the fault proxy cannot bind a port on 127.0.0.1");
        let port = listener
            .local_addr()
            .expect("the fault proxy's listener has no local address")
            .port();
        let shared = Arc::new(Shared {
            upstream,
            stopping: AtomicBool::new(false),
            refusing: AtomicBool::new(false),
            delay_micros: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            stall_budget: Mutex::new(None),
            cut_budget: Mutex::new(None),
            refusal: Mutex::new(None),
            refused: AtomicUsize::new(0),
            rewrites: Mutex::new(HashMap::new()),
            accepted: AtomicUsize::new(0),
            downstream: AtomicU64::new(0),
            client_open: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            live: Mutex::new(HashMap::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("fault-proxy-{port}"))
                .spawn(move || accept_loop(&listener, &shared))
                .expect("cannot start the fault proxy's accept thread")
        };
        FaultProxy {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The port on 127.0.0.1 to point the client at.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port()`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The address connections are forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Closes every live connection now (both sides see the connection drop).
    /// New connections are still accepted.
    pub fn cut_all(&self) {
        for connection in lock(&self.shared.live).values() {
            connection.close();
        }
    }

    /// Arms a single cut: after `n` more bytes have gone from server to client
    /// (counted over all connections from now on), the connection carrying the n-th
    /// byte is closed, with exactly `n` bytes delivered. Then the proxy forwards
    /// normally again. `n = 0` cuts at the next downstream chunk.
    pub fn cut_after_bytes(&self, n: u64) {
        *lock(&self.shared.cut_budget) = Some(n);
    }

    /// Waits `delay` before forwarding each chunk, both directions; `Duration::ZERO`
    /// turns it off.
    pub fn set_delay(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.shared.delay_micros.store(micros, Ordering::SeqCst);
    }

    /// Stalls every connection, new ones too: nothing more is read or forwarded either way, as
    /// a server that hangs (the client's writes block once the buffers are full).
    pub fn stall(&self) {
        self.shared.stalled.store(true, Ordering::SeqCst);
    }

    /// Arms a stall: after `n` more bytes have gone from client to server (over all
    /// connections), everything stalls as with [`FaultProxy::stall`].
    pub fn stall_after_upstream_bytes(&self, n: u64) {
        *lock(&self.shared.stall_budget) = Some(n);
    }

    /// Ends a stall: what was held goes on.
    pub fn resume(&self) {
        *lock(&self.shared.stall_budget) = None;
        self.shared.stalled.store(false, Ordering::SeqCst);
    }

    /// While `true`, new connections are accepted and closed at once without
    /// contacting the upstream (live ones continue).
    pub fn refuse(&self, refuse: bool) {
        self.shared.refusing.store(refuse, Ordering::SeqCst);
    }

    /// Arms a throttling server: the next `times` IMAP commands (over all connections) whose
    /// text after the tag starts with `prefix` (e.g. `UID FETCH`, case-insensitive) are
    /// answered `TAG NO [LIMIT] ...` without being carried out. The proxy sends the server a
    /// harmless `STATUS` of a missing mailbox under the same tag instead and turns its
    /// answer into the `NO [LIMIT]`, so the answer comes in the server's own order.
    /// Only for plaintext connections whose client sends no literals in such commands.
    pub fn refuse_commands(&self, prefix: &str, times: usize) {
        *lock(&self.shared.refusal) = Some(Refusal {
            pattern: prefix.to_ascii_uppercase().into_bytes(),
            anywhere: false,
            answer: THROTTLED_ANSWER.to_vec(),
            left: times,
        });
    }

    /// Like [`FaultProxy::refuse_commands`], for a server that refuses for good: the next
    /// `times` commands holding `needle` anywhere (case-insensitive; e.g. `FETCH 7 (`) are
    /// answered `TAG NO [code] ...`, e.g. with `code` `SERVERBUG`.
    pub fn refuse_commands_containing(&self, needle: &str, times: usize, code: &str) {
        *lock(&self.shared.refusal) = Some(Refusal {
            pattern: needle.to_ascii_uppercase().into_bytes(),
            anywhere: true,
            answer: format!(" NO [{code}] ").into_bytes(),
            left: times,
        });
    }

    /// Commands answered NO [LIMIT] so far (see [`FaultProxy::refuse_commands`]).
    pub fn refused_commands(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Bytes the server sent the client so far, over all connections (as on the wire).
    pub fn downstream_bytes(&self) -> u64 {
        self.shared.downstream.load(Ordering::SeqCst)
    }

    /// Connections accepted so far, refused ones included.
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// The most connections that clients had open through the proxy at once (a connection
    /// counts from its accept until its client closes its side).
    pub fn peak_connections(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }

    /// Connections currently open through the proxy.
    pub fn live_connections(&self) -> usize {
        lock(&self.shared.live).len()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept() with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.cut_all();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking pump thread must not take the whole proxy down with it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else {
            // E.g. EMFILE: back off instead of spinning.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        if shared.refusing.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(server) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5))
        else {
            // The upstream is down: the client sees a closed connection, as it would.
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        if let Err(error) = start_pumps(shared, client, server) {
            eprintln!("fault proxy: cannot forward a connection: {error}");
        }
    }
}

fn start_pumps(shared: &Arc<Shared>, client: TcpStream, server: TcpStream) -> std::io::Result<()> {
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let pumps = Arc::new(AtomicUsize::new(2));
    {
        let mut live = lock(&shared.live);
        live.insert(
            id,
            Connection {
                client: client.try_clone()?,
                server: server.try_clone()?,
                pumps: Arc::clone(&pumps),
            },
        );
    }
    let open = shared.client_open.fetch_add(1, Ordering::SeqCst) + 1;
    shared.peak.fetch_max(open, Ordering::SeqCst);
    let directions = [
        (client.try_clone()?, server.try_clone()?, false),
        (server, client, true),
    ];
    for (from, to, downstream) in directions {
        let shared = Arc::clone(shared);
        thread::Builder::new()
            .name(format!("fault-proxy-pump-{id}"))
            .spawn(move || {
                pump(&shared, id, from, to, downstream);
                if !downstream {
                    shared.client_open.fetch_sub(1, Ordering::SeqCst);
                }
                let mut live = lock(&shared.live);
                let last = live
                    .get(&id)
                    .is_some_and(|c| c.pumps.fetch_sub(1, Ordering::SeqCst) == 1);
                if last {
                    live.remove(&id);
                }
            })?;
    }
    Ok(())
}

/// Copies `from` → `to` chunk by chunk, applying delay and (downstream) the cut.
fn pump(shared: &Shared, id: u64, mut from: TcpStream, mut to: TcpStream, downstream: bool) {
    let mut buffer = vec![0u8; 16 * 1024];
    // Client bytes held until their line is complete, while refusals are armed; server
    // bytes held while they may be the start of an answer to rewrite.
    let mut held: Vec<u8> = Vec::new();
    loop {
        wait_while_stalled(shared);
        let read = match from.read(&mut buffer) {
            Ok(0) => {
                // Half-close: pass the EOF on, the other direction may go on.
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(read) => read,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let delay = shared.delay_micros.load(Ordering::SeqCst);
        if delay > 0 {
            thread::sleep(Duration::from_micros(delay));
        }
        let data = if downstream {
            rewrite_answers(shared, id, &mut held, &buffer[..read])
        } else {
            refuse_commands(shared, id, &mut held, &buffer[..read])
        };
        let read = data.len();
        let (forward, cut) = if downstream {
            let mut budget = lock(&shared.cut_budget);
            match *budget {
                Some(left) if (read as u64) >= left => {
                    *budget = None;
                    (usize::try_from(left).unwrap_or(read), true)
                }
                Some(left) => {
                    *budget = Some(left - read as u64);
                    (read, false)
                }
                None => (read, false),
            }
        } else {
            (read, false)
        };
        if !downstream {
            // An armed stall: forward up to the budget, stall, send the rest on resume.
            let stall_at = {
                let mut budget = lock(&shared.stall_budget);
                match *budget {
                    Some(left) if (forward as u64) >= left => {
                        *budget = None;
                        Some(usize::try_from(left).unwrap_or(forward))
                    }
                    Some(left) => {
                        *budget = Some(left - forward as u64);
                        None
                    }
                    None => None,
                }
            };
            if let Some(at) = stall_at {
                if to.write_all(&data[..at]).is_err() {
                    break;
                }
                shared.stalled.store(true, Ordering::SeqCst);
                wait_while_stalled(shared);
                if to.write_all(&data[at..forward]).is_err() {
                    break;
                }
                continue;
            }
        }
        if downstream {
            shared
                .downstream
                .fetch_add(forward as u64, Ordering::SeqCst);
        }
        if to.write_all(&data[..forward]).is_err() || cut {
            break;
        }
    }
    // An error or a cut: close the whole connection, both sides.
    if let Some(connection) = lock(&shared.live).get(&id) {
        connection.close();
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

fn wait_while_stalled(shared: &Shared) {
    while shared.stalled.load(Ordering::SeqCst) && !shared.stopping.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(10));
    }
}

/// Client → server: while refusals are armed, whole lines only; a refused command goes on
/// as a `STATUS` of a missing mailbox under its tag (see [`FaultProxy::refuse_commands`]).
fn refuse_commands(shared: &Shared, id: u64, held: &mut Vec<u8>, chunk: &[u8]) -> Vec<u8> {
    let armed = || lock(&shared.refusal).as_ref().is_some_and(|r| r.left > 0);
    if held.is_empty() && !armed() {
        return chunk.to_vec();
    }
    held.extend_from_slice(chunk);
    let mut out = Vec::with_capacity(held.len());
    while let Some(end) = held.windows(2).position(|w| w == b"\r\n") {
        let line: Vec<u8> = held.drain(..end + 2).collect();
        let Some(space) = line.iter().position(|b| *b == b' ') else {
            out.extend(line);
            continue;
        };
        let (tag, rest) = (&line[..space], &line[space + 1..]);
        let mut refusal = lock(&shared.refusal);
        match refusal.as_mut() {
            Some(r) if r.left > 0 && matches(r, &rest.to_ascii_uppercase()) => {
                r.left -= 1;
                shared.refused.fetch_add(1, Ordering::SeqCst);
                lock(&shared.rewrites)
                    .entry(id)
                    .or_default()
                    .push((tag.to_vec(), r.answer.clone()));
                out.extend_from_slice(tag);
                out.extend_from_slice(b" STATUS \"Too many commands, slow down\" (MESSAGES)\r\n");
            }
            _ => out.extend(line),
        }
    }
    if !armed() {
        out.append(held);
    }
    out
}

fn matches(refusal: &Refusal, command: &[u8]) -> bool {
    if refusal.anywhere {
        command
            .windows(refusal.pattern.len().max(1))
            .any(|w| w == refusal.pattern.as_slice())
    } else {
        command.starts_with(&refusal.pattern)
    }
}

/// Server → client: the answer to a stand-in command becomes `TAG NO [LIMIT] ...`. Bytes
/// that may be the start of such an answer wait for the next chunk.
fn rewrite_answers(shared: &Shared, id: u64, held: &mut Vec<u8>, chunk: &[u8]) -> Vec<u8> {
    let mut rewrites = lock(&shared.rewrites);
    let Some(tags) = rewrites.get_mut(&id).filter(|t| !t.is_empty()) else {
        if held.is_empty() {
            return chunk.to_vec();
        }
        held.extend_from_slice(chunk);
        return std::mem::take(held);
    };
    held.extend_from_slice(chunk);
    let mut data = std::mem::take(held);
    tags.retain(|(tag, answer)| {
        let mut pattern = tag.clone();
        pattern.extend_from_slice(STAND_IN_ANSWER);
        match data
            .windows(pattern.len())
            .position(|w| w == pattern.as_slice())
        {
            Some(at) => {
                let mut replaced = data[..at].to_vec();
                replaced.extend_from_slice(tag);
                replaced.extend_from_slice(answer);
                replaced.extend_from_slice(&data[at + pattern.len()..]);
                data = replaced;
                false
            }
            None => true,
        }
    });
    // Hold back a tail that could begin an answer still to come.
    let mut keep = 0;
    for (tag, _) in tags.iter() {
        let mut pattern = tag.clone();
        pattern.extend_from_slice(STAND_IN_ANSWER);
        for n in (1..pattern.len()).rev() {
            if n <= data.len() && data.ends_with(&pattern[..n]) {
                keep = keep.max(n);
                break;
            }
        }
    }
    *held = data.split_off(data.len() - keep);
    data
}
