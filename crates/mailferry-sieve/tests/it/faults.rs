//! A real managesieved behind the fault proxy: silence becomes a timeout naming the step,
//! a dropped connection an error naming the server, never a hang or a panic.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mailferry_sieve::{Auth, Security, SieveClient, SieveEndpoint, SieveError, TlsOptions};
use mailferry_testkit::dovecot::{Dovecot, USER1, USER1_PASSWORD};
use mailferry_testkit::proxy::FaultProxy;
use secrecy::SecretString;

fn through(proxy: &FaultProxy, server: &Dovecot) -> SieveEndpoint {
    SieveEndpoint {
        host: "127.0.0.1".into(),
        port: proxy.port(),
        security: Security::StartTls,
        tls: TlsOptions {
            ca_file: Some(server.cert_pem_path()),
            insecure: false,
        },
        allow_plaintext: false,
    }
}

fn auth() -> Auth {
    Auth::Password {
        user: USER1.into(),
        password: SecretString::from(USER1_PASSWORD),
    }
}

fn upstream(server: &Dovecot) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.sieve_port()))
}

#[tokio::test]
async fn a_server_that_stops_answering_times_out_naming_the_step() {
    let server = Dovecot::start().unwrap();
    let proxy = FaultProxy::start(upstream(&server));
    let mut client = SieveClient::connect(&through(&proxy, &server), Duration::from_secs(2))
        .await
        .unwrap();
    client.authenticate(&auth()).await.unwrap();
    // The next command goes nowhere: the server hangs from here on.
    proxy.stall_after_upstream_bytes(0);
    let started = Instant::now();
    let error = client.list_scripts().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(error, SieveError::Timeout { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&proxy.port().to_string()), "{text}");
    proxy.resume();
}

#[tokio::test]
async fn a_dropped_connection_is_an_error_naming_the_server() {
    let server = Dovecot::start().unwrap();
    let proxy = FaultProxy::start(upstream(&server));
    let mut client = SieveClient::connect(&through(&proxy, &server), Duration::from_secs(5))
        .await
        .unwrap();
    client.authenticate(&auth()).await.unwrap();
    proxy.cut_all();
    let error = client
        .put_script("x", b"keep;\r\n")
        .await
        .expect_err("the connection is gone");
    assert!(
        matches!(error, SieveError::Closed { .. } | SieveError::Tls { .. }),
        "{error:?}"
    );
    assert!(error.addr().is_some());
    // A connection cut during the greeting: the next connect fails cleanly too.
    proxy.cut_after_bytes(5);
    let Err(error) = SieveClient::connect(&through(&proxy, &server), Duration::from_secs(5)).await
    else {
        panic!("a greeting cut short does not connect");
    };
    assert!(!error.hint().is_empty());
}
