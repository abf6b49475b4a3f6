//! The only file that touches sockets: TCP, TLS (rustls), the STARTTLS upgrade, and the
//! COMPRESS=DEFLATE layer on top (`compress`).

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::compress::{CompressionCounts, DeflateStream};
use crate::error::ImapError;

/// How certificates are checked for one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Extra CA certificates (PEM) trusted besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate: only for lab servers with self-signed certificates.
    pub insecure: bool,
}

/// A plain or TLS connection, possibly compressed.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// After COMPRESS=DEFLATE: raw deflate both ways over a plain or TLS stream.
    Compressed(Box<DeflateStream<Stream>>),
    /// Only while [`Stream::start_compression`] swaps the stream; I/O on it fails.
    Detached,
}

impl Stream {
    pub(crate) fn is_tls(&self) -> bool {
        match self {
            Stream::Tls(_) => true,
            Stream::Compressed(s) => s.get_ref().is_tls(),
            Stream::Plain(_) | Stream::Detached => false,
        }
    }

    /// From now on, everything written is deflated and everything read inflated.
    pub(crate) fn start_compression(&mut self) {
        let inner = std::mem::replace(self, Stream::Detached);
        *self = Stream::Compressed(Box::new(DeflateStream::new(inner)));
    }

    /// Byte counts of the compression layer, when there is one.
    pub(crate) fn compression(&self) -> Option<CompressionCounts> {
        match self {
            Stream::Compressed(s) => Some(s.counts()),
            _ => None,
        }
    }
}

fn detached() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection is being rewrapped",
    )
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Compressed(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Detached => Poll::Ready(Err(detached())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Compressed(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Detached => Poll::Ready(Err(detached())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Compressed(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Detached => Poll::Ready(Err(detached())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Compressed(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Detached => Poll::Ready(Err(detached())),
        }
    }
}

/// A TCP connection to `host:port`, every address tried in turn, the lookup and each
/// attempt within `timeout`. Shared with the other protocols of an account (ManageSieve).
pub async fn connect_tcp(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, ImapError> {
    let addr = format!("{host}:{port}");
    // The resolver may hang as long as the system's resolver does (minutes): the same
    // timeout as every other step (issue 19).
    let addrs: Vec<_> = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| ImapError::Timeout {
            addr: addr.clone(),
            seconds: timeout.as_secs(),
            during: "looking up the server's address",
        })?
        .map_err(|source| ImapError::Resolve {
            host: host.to_string(),
            source,
        })?
        .collect();
    let mut last = None;
    for candidate in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(candidate)).await {
            Ok(Ok(stream)) => {
                stream.set_nodelay(true).ok();
                return Ok(stream);
            }
            Ok(Err(e)) => {
                last = Some(ImapError::Connect {
                    addr: addr.clone(),
                    source: e,
                })
            }
            Err(_) => {
                last = Some(ImapError::Timeout {
                    addr: addr.clone(),
                    seconds: timeout.as_secs(),
                    during: "connecting",
                })
            }
        }
    }
    Err(last.unwrap_or(ImapError::Resolve {
        host: host.to_string(),
        source: io::Error::new(io::ErrorKind::NotFound, "no address"),
    }))
}

pub(crate) async fn start_tls(
    tcp: TcpStream,
    host: &str,
    port: u16,
    options: &TlsOptions,
) -> Result<Stream, ImapError> {
    let addr = format!("{host}:{port}");
    let config = client_config(options)?;
    let name = ServerName::try_from(host.to_string()).map_err(|_| ImapError::Tls {
        addr: addr.clone(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "not a valid TLS server name"),
    })?;
    match TlsConnector::from(config).connect(name, tcp).await {
        Ok(tls) => Ok(Stream::Tls(Box::new(tls))),
        Err(source) => {
            if let Some(rustls::Error::InvalidCertificate(reason)) = source
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>())
            {
                return Err(ImapError::Certificate {
                    addr,
                    reason: describe_certificate_error(reason),
                });
            }
            Err(ImapError::Tls { addr, source })
        }
    }
}

/// Why a certificate was refused, in words an admin can act on.
pub fn describe_certificate_error(error: &rustls::CertificateError) -> String {
    use rustls::CertificateError as E;
    match error {
        E::UnknownIssuer => {
            "it is signed by an unknown authority (self-signed or a private CA)".into()
        }
        E::Expired | E::ExpiredContext { .. } => "it has expired".into(),
        E::NotValidYet | E::NotValidYetContext { .. } => {
            "it is not valid yet (check this machine's clock)".into()
        }
        E::NotValidForName | E::NotValidForNameContext { .. } => {
            "it was issued for another host name".into()
        }
        E::Revoked => "it has been revoked".into(),
        // A signature that does not check out against any trusted root: for an admin this
        // is the same as an unknown issuer (a self-signed or private-CA certificate).
        E::BadSignature
        | E::UnsupportedSignatureAlgorithmContext { .. }
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "it is not signed by an authority this machine trusts (self-signed or a private CA)"
                .into()
        }
        other => rustls::Error::InvalidCertificate(other.clone()).to_string(),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's roots, read once: the platform store, or the bundle `SSL_CERT_FILE` names.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let loaded = rustls_native_certs::load_native_certs();
        for cert in loaded.certs {
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            tracing::warn!(
                "no system CA certificates found; only --ca-file certificates will be trusted"
            );
        }
        roots
    })
}

/// The rustls client configuration for `options`: the system's roots plus `ca_file`, or no
/// check at all when `insecure`. Shared with the other protocols of an account (ManageSieve).
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, ImapError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::Tls {
            addr: String::new(),
            source: io::Error::other(e),
        })?;
    let config = if options.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = system_roots().clone();
        if let Some(path) = &options.ca_file {
            add_ca_file(&mut roots, path)?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), ImapError> {
    let fail = |reason: String| ImapError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let mut added = 0;
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))? {
        let cert = cert.map_err(|e| fail(e.to_string()))?;
        roots.add(cert).map_err(|e| fail(e.to_string()))?;
        added += 1;
    }
    if added == 0 {
        return Err(fail("it holds no certificate".into()));
    }
    Ok(())
}

/// `--insecure`: the certificate is not checked, the handshake's signatures still are.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
