//! The client against Dovecot 2.3's managesieved: STARTTLS with a verified certificate,
//! PLAIN logins (also as a master user), script round trips byte for byte, and the server's
//! refusals as they really come.

use std::time::Duration;

use mailferry_sieve::{Auth, Security, SieveClient, SieveEndpoint, SieveError, TlsOptions};
use mailferry_testkit::dovecot::{
    Dovecot, ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, MASTER_PASSWORD, MASTER_USER, USER1,
    USER1_PASSWORD,
};
use secrecy::SecretString;

const TIMEOUT: Duration = Duration::from_secs(20);

fn endpoint(server: &Dovecot) -> SieveEndpoint {
    SieveEndpoint {
        host: "127.0.0.1".into(),
        port: server.sieve_port(),
        security: Security::StartTls,
        tls: TlsOptions {
            ca_file: Some(server.cert_pem_path()),
            insecure: false,
        },
        allow_plaintext: false,
    }
}

fn password(user: &str, password: &str) -> Auth {
    Auth::Password {
        user: user.into(),
        password: SecretString::from(password),
    }
}

async fn login(server: &Dovecot, user: &str, pw: &str) -> SieveClient {
    let mut client = SieveClient::connect(&endpoint(server), TIMEOUT)
        .await
        .expect("connects");
    client
        .authenticate(&password(user, pw))
        .await
        .expect("logs in");
    client
}

#[tokio::test]
async fn starttls_login_and_exact_round_trip() {
    let server = Dovecot::start().unwrap();
    let mut client = SieveClient::connect(&endpoint(&server), TIMEOUT)
        .await
        .expect("connects with STARTTLS, certificate verified against the CA file");
    assert!(client.is_tls(), "STARTTLS must be used when offered");
    let caps = client.capabilities().clone();
    eprintln!("capabilities after STARTTLS: {caps:?}");
    assert!(caps.has_extension("fileinto"), "{caps:?}");
    assert!(caps.has_extension("FileInto"));
    assert!(caps.sasl.contains(&"PLAIN".to_string()), "{caps:?}");
    assert!(!caps.starttls, "STARTTLS is not offered again inside TLS");
    assert_eq!(caps.version.as_deref(), Some("1.0"));
    assert!(caps
        .implementation
        .as_deref()
        .is_some_and(|i| i.contains("Pigeonhole")));

    client
        .authenticate(&password(ALICE, ALICE_PASSWORD))
        .await
        .unwrap();
    assert_eq!(client.list_scripts().await.unwrap(), vec![]);

    let name = "Mein Filter ü";
    let script = "# Grüße – UTF-8 and CRLF\r\nrequire [\"fileinto\"];\r\nif header :contains \"subject\" \"Übersicht\" {\r\n  fileinto \"INBOX\";\r\n}\r\n";
    let stored = client.put_script(name, script.as_bytes()).await.unwrap();
    assert_eq!(stored, Ok(None));
    let other = "keep;\n";
    assert_eq!(
        client.put_script("second", other.as_bytes()).await.unwrap(),
        Ok(None)
    );

    let mut list = client.list_scripts().await.unwrap();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        list.iter()
            .map(|s| (s.name.as_str(), s.active))
            .collect::<Vec<_>>(),
        vec![(name, false), ("second", false)]
    );
    assert_eq!(client.get_script(name).await.unwrap(), script.as_bytes());
    assert_eq!(client.get_script("second").await.unwrap(), other.as_bytes());

    assert_eq!(client.set_active(name).await.unwrap(), Ok(()));
    let list = client.list_scripts().await.unwrap();
    assert!(list.iter().any(|s| s.name == name && s.active), "{list:?}");
    assert!(
        list.iter().any(|s| s.name == "second" && !s.active),
        "{list:?}"
    );

    // The active script cannot be deleted.
    let refused = client.delete_script(name).await.unwrap().unwrap_err();
    eprintln!("DELETESCRIPT of the active script: {refused:?}");
    assert_eq!(refused.code.as_deref(), Some("ACTIVE"));

    assert_eq!(client.set_active("").await.unwrap(), Ok(()));
    assert!(client
        .list_scripts()
        .await
        .unwrap()
        .iter()
        .all(|s| !s.active));
    assert_eq!(client.have_space("third", 1000).await.unwrap(), Ok(()));
    assert_eq!(client.delete_script("second").await.unwrap(), Ok(()));
    assert_eq!(client.delete_script(name).await.unwrap(), Ok(()));
    assert_eq!(client.list_scripts().await.unwrap(), vec![]);
    client.logout().await.unwrap();
}

#[tokio::test]
async fn refusals_as_dovecot_sends_them() {
    let server = Dovecot::start().unwrap();
    let mut client = login(&server, USER1, USER1_PASSWORD).await;

    let unknown = b"require \"vnd.dovecot.nonexistent\";\nkeep;\n";
    let refused = client
        .put_script("bad", unknown)
        .await
        .unwrap()
        .unwrap_err();
    eprintln!("PUTSCRIPT with an unknown extension: {refused:?}");
    assert!(
        refused.message.contains("vnd.dovecot.nonexistent"),
        "{refused:?}"
    );

    let refused = client.check_script(unknown).await.unwrap().unwrap_err();
    eprintln!("CHECKSCRIPT with an unknown extension: {refused:?}");
    assert!(
        refused.message.contains("vnd.dovecot.nonexistent"),
        "{refused:?}"
    );

    let syntax = b"if header :contains \"subject\" {\n  keep\n";
    let refused = client.check_script(syntax).await.unwrap().unwrap_err();
    eprintln!("CHECKSCRIPT with a syntax error: {refused:?}");
    assert!(!refused.message.is_empty());
    assert_eq!(client.check_script(b"keep;\r\n").await.unwrap(), Ok(None));
    // Nothing was stored.
    assert_eq!(client.list_scripts().await.unwrap(), vec![]);

    let error = client.get_script("missing").await.unwrap_err();
    eprintln!("GETSCRIPT of a missing script: {error:?} / {error}");
    match &error {
        SieveError::Refused {
            command: "GETSCRIPT",
            refusal,
            ..
        } => assert_eq!(refusal.code.as_deref(), Some("NONEXISTENT")),
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(error
        .to_string()
        .contains(&format!("127.0.0.1:{}", server.sieve_port())));

    let refused = client.delete_script("missing").await.unwrap().unwrap_err();
    eprintln!("DELETESCRIPT of a missing script: {refused:?}");
    assert_eq!(refused.code.as_deref(), Some("NONEXISTENT"));
    let refused = client.set_active("missing").await.unwrap().unwrap_err();
    eprintln!("SETACTIVE of a missing script: {refused:?}");
    assert_eq!(refused.code.as_deref(), Some("NONEXISTENT"));

    // The session is still usable after all those refusals.
    assert_eq!(
        client.put_script("good", b"keep;\n").await.unwrap(),
        Ok(None)
    );
    assert_eq!(client.get_script("good").await.unwrap(), b"keep;\n");
    client.logout().await.unwrap();
}

#[tokio::test]
async fn wrong_password_is_rejected_without_showing_it() {
    let server = Dovecot::start().unwrap();
    let mut client = SieveClient::connect(&endpoint(&server), TIMEOUT)
        .await
        .unwrap();
    let secret = "not-the-pw-4711";
    let error = client
        .authenticate(&password(BOB, secret))
        .await
        .unwrap_err();
    eprintln!("wrong password: {error:?} / {error}");
    assert!(
        matches!(&error, SieveError::LoginRejected { user, .. } if user == BOB),
        "{error:?}"
    );
    let shown = format!("{error} {error:?} {}", error.hint());
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains(&format!("127.0.0.1:{}", server.sieve_port())));
    // A second attempt on the same connection works.
    client
        .authenticate(&password(BOB, BOB_PASSWORD))
        .await
        .expect("the right password works after a wrong one");
}

#[tokio::test]
async fn master_user_acts_as_the_user() {
    let server = Dovecot::start().unwrap();
    let mut alice = login(&server, ALICE, ALICE_PASSWORD).await;
    alice
        .put_script("alices", b"keep;\n")
        .await
        .unwrap()
        .unwrap();
    alice.logout().await.unwrap();

    let mut client = SieveClient::connect(&endpoint(&server), TIMEOUT)
        .await
        .unwrap();
    client
        .authenticate(&Auth::AsUser {
            admin: MASTER_USER.into(),
            password: SecretString::from(MASTER_PASSWORD),
            authorize_as: ALICE.into(),
        })
        .await
        .expect("the master user logs in as alice");
    let list = client.list_scripts().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "alices");
    assert_eq!(client.get_script("alices").await.unwrap(), b"keep;\n");

    let mut client = SieveClient::connect(&endpoint(&server), TIMEOUT)
        .await
        .unwrap();
    let error = client
        .authenticate(&Auth::AsUser {
            admin: MASTER_USER.into(),
            password: SecretString::from("wrong-master-pw"),
            authorize_as: ALICE.into(),
        })
        .await
        .unwrap_err();
    eprintln!("wrong master password: {error}");
    assert!(matches!(error, SieveError::LoginRejected { .. }));
    assert!(!error.to_string().contains("wrong-master-pw"));
}

#[tokio::test]
async fn plain_security_and_missing_mechanism() {
    let server = Dovecot::start().unwrap();
    let mut e = endpoint(&server);
    e.security = Security::Plain;
    let mut client = SieveClient::connect(&e, TIMEOUT).await.unwrap();
    assert!(!client.is_tls());
    assert!(client.capabilities().starttls);
    let error = client
        .authenticate(&Auth::XOAuth2 {
            user: ALICE.into(),
            token: SecretString::from("tok"),
        })
        .await
        .unwrap_err();
    eprintln!("XOAUTH2 at Dovecot: {error}");
    assert!(
        matches!(&error, SieveError::NoMechanism { mechanism: "XOAUTH2", offered, .. } if offered.contains(&"PLAIN".to_string())),
        "{error:?}"
    );
    client
        .authenticate(&password(ALICE, ALICE_PASSWORD))
        .await
        .unwrap();
    assert_eq!(client.list_scripts().await.unwrap(), vec![]);
    client.logout().await.unwrap();
}

#[tokio::test]
async fn certificate_and_tls_failures() {
    let server = Dovecot::start().unwrap();
    // The system's roots do not know the test CA.
    let mut e = endpoint(&server);
    e.tls.ca_file = None;
    let error = SieveClient::connect(&e, TIMEOUT).await.unwrap_err();
    eprintln!("no CA file: {error}");
    assert!(matches!(error, SieveError::Certificate { .. }), "{error:?}");
    assert!(error.hint().contains("insecure"));

    // Unverified: works.
    e.tls.insecure = true;
    let client = SieveClient::connect(&e, TIMEOUT).await.unwrap();
    assert!(client.is_tls());

    // A CA file that is not one.
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("ca.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let mut e = endpoint(&server);
    e.tls.ca_file = Some(bogus);
    let error = SieveClient::connect(&e, TIMEOUT).await.unwrap_err();
    assert!(matches!(error, SieveError::CaFile { .. }), "{error:?}");

    // TLS from the first byte on the plain ManageSieve port.
    let mut e = endpoint(&server);
    e.security = Security::Tls;
    let error = SieveClient::connect(&e, Duration::from_secs(5))
        .await
        .unwrap_err();
    eprintln!("implicit TLS on the STARTTLS port: {error:?}");
    assert!(
        matches!(error, SieveError::Tls { .. } | SieveError::Timeout { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn closed_port_is_connect_refused() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let e = SieveEndpoint {
        host: "127.0.0.1".into(),
        port,
        security: Security::StartTls,
        tls: TlsOptions::default(),
        allow_plaintext: false,
    };
    let error = SieveClient::connect(&e, TIMEOUT).await.unwrap_err();
    assert!(error.is_connect_refused(), "{error:?}");
    assert_eq!(error.addr(), Some(format!("127.0.0.1:{port}").as_str()));
}

#[tokio::test]
async fn imap_port_is_not_sieve() {
    let server = Dovecot::start().unwrap();
    let mut e = endpoint(&server);
    e.port = server.imap_port();
    let error = SieveClient::connect(&e, TIMEOUT).await.unwrap_err();
    eprintln!("IMAP port: {error}");
    assert!(matches!(error, SieveError::NotSieve { .. }), "{error:?}");
}
