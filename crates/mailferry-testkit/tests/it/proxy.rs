//! The fault proxy against a tiny in-process upstream.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use mailferry_testkit::FaultProxy;

/// Greets with `* OK fake\r\n`, then answers `big\n` with 10 000 bytes and echoes
/// everything else.
fn upstream() -> SocketAddr {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind upstream");
    let address = listener.local_addr().expect("upstream address");
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                let _ = stream.write_all(b"* OK fake\r\n");
                let mut buffer = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buffer) {
                    if n == 0 {
                        return;
                    }
                    let reply: Vec<u8> = if &buffer[..n] == b"big\n" {
                        vec![b'z'; 10_000]
                    } else {
                        buffer[..n].to_vec()
                    };
                    if stream.write_all(&reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

fn connect(proxy: &FaultProxy) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", proxy.port())).expect("connect to proxy");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set timeout");
    stream
}

fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buffer = vec![0u8; n];
    stream.read_exact(&mut buffer).expect("read through proxy");
    buffer
}

/// Everything until EOF; panics on a timeout (the connection was not closed).
fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    match stream.read_to_end(&mut out) {
        Ok(_) => out,
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => out,
        Err(error) => panic!("connection not closed: {error} after {} bytes", out.len()),
    }
}

#[test]
fn forwards_greeting_and_cut_all_closes() {
    let proxy = FaultProxy::start(upstream());
    let mut client = connect(&proxy);
    assert_eq!(read_exactly(&mut client, 11), b"* OK fake\r\n");
    client.write_all(b"hello\n").expect("write");
    assert_eq!(read_exactly(&mut client, 6), b"hello\n");
    assert_eq!(proxy.connections(), 1);
    assert_eq!(proxy.live_connections(), 1);
    proxy.cut_all();
    assert!(read_to_close(&mut client).is_empty());
    // Still accepting afterwards.
    let mut again = connect(&proxy);
    assert_eq!(read_exactly(&mut again, 11), b"* OK fake\r\n");
    assert_eq!(proxy.connections(), 2);
}

#[test]
fn cut_after_bytes_delivers_exactly_n_bytes_once() {
    let proxy = FaultProxy::start(upstream());
    let mut client = connect(&proxy);
    read_exactly(&mut client, 11);
    proxy.cut_after_bytes(1_000);
    client.write_all(b"big\n").expect("write");
    assert_eq!(read_to_close(&mut client).len(), 1_000);
    // Disarmed: the next connection gets everything.
    let mut next = connect(&proxy);
    read_exactly(&mut next, 11);
    next.write_all(b"big\n").expect("write");
    assert_eq!(read_exactly(&mut next, 10_000), vec![b'z'; 10_000]);
}

#[test]
fn refuse_and_delay() {
    let proxy = FaultProxy::start(upstream());
    proxy.refuse(true);
    let mut refused = connect(&proxy);
    assert!(read_to_close(&mut refused).is_empty());
    assert_eq!(proxy.connections(), 1);
    proxy.refuse(false);

    let mut client = connect(&proxy);
    read_exactly(&mut client, 11);
    proxy.set_delay(Duration::from_millis(150));
    let start = Instant::now();
    client.write_all(b"ping\n").expect("write");
    assert_eq!(read_exactly(&mut client, 5), b"ping\n");
    // One chunk each way, each delayed.
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    proxy.set_delay(Duration::ZERO);
    drop(proxy);
    assert!(
        read_to_close(&mut client).is_empty(),
        "drop closes live connections"
    );
}
