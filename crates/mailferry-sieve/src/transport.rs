//! The only file that touches sockets: TCP connect, TLS from the first byte or after
//! STARTTLS (rustls, with mailferry-imap's certificate configuration), and reading whole
//! responses through [`crate::parse`] under a timeout.
//!
//! Nothing here logs what is written: a command may carry a password.

use std::io;
use std::time::Duration;

use mailferry_imap::{describe_certificate_error, ImapError, TlsOptions};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::SieveError;
use crate::parse::{parse_response, ParseError, Response};

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while STARTTLS swaps the stream.
    Detached,
}

/// One connection to a ManageSieve server, with the bytes received but not yet parsed.
pub(crate) struct Connection {
    stream: Stream,
    buf: Vec<u8>,
    addr: String,
    timeout: Duration,
}

impl Connection {
    /// Resolves `host`, connects over TCP, and with `tls` starts TLS at once.
    pub(crate) async fn connect(
        host: &str,
        port: u16,
        addr: String,
        tls: Option<&TlsOptions>,
        timeout: Duration,
    ) -> Result<Self, SieveError> {
        let tcp = connect_tcp(host, port, &addr, timeout).await?;
        let mut conn = Connection {
            stream: Stream::Plain(tcp),
            buf: Vec::new(),
            addr,
            timeout,
        };
        if let Some(options) = tls {
            conn.start_tls(host, options).await?;
        }
        Ok(conn)
    }

    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// Replaces the plain stream by TLS. Bytes the server sent before the handshake (after
    /// its STARTTLS `OK`) would be an injection attack, so they are an error.
    pub(crate) async fn start_tls(
        &mut self,
        host: &str,
        options: &TlsOptions,
    ) -> Result<(), SieveError> {
        if !self.buf.is_empty() {
            return Err(SieveError::Protocol {
                addr: self.addr.clone(),
                detail: "it sent data before the TLS handshake".into(),
            });
        }
        let addr = self.addr.clone();
        let config = mailferry_imap::tls_client_config(options).map_err(|e| match e {
            ImapError::CaFile { path, reason } => SieveError::CaFile { path, reason },
            other => SieveError::Tls {
                addr: addr.clone(),
                source: io::Error::other(other.to_string()),
            },
        })?;
        let name = ServerName::try_from(host.to_string()).map_err(|_| SieveError::Tls {
            addr: addr.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a valid TLS server name"),
        })?;
        let tcp = match std::mem::replace(&mut self.stream, Stream::Detached) {
            Stream::Plain(tcp) => tcp,
            other => {
                self.stream = other;
                return Err(SieveError::Protocol {
                    addr,
                    detail: "TLS was started twice".into(),
                });
            }
        };
        let handshake = TlsConnector::from(config).connect(name, tcp);
        let tls = match tokio::time::timeout(self.timeout, handshake).await {
            Err(_) => {
                return Err(SieveError::Timeout {
                    addr,
                    seconds: self.timeout.as_secs(),
                    during: "during the TLS handshake",
                })
            }
            Ok(Err(source)) => {
                if let Some(rustls::Error::InvalidCertificate(reason)) = source
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<rustls::Error>())
                {
                    return Err(SieveError::Certificate {
                        addr,
                        reason: describe_certificate_error(reason),
                    });
                }
                return Err(SieveError::Tls { addr, source });
            }
            Ok(Ok(tls)) => tls,
        };
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    /// Writes `bytes` (a whole command) and flushes.
    pub(crate) async fn write(
        &mut self,
        bytes: &[u8],
        during: &'static str,
    ) -> Result<(), SieveError> {
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, async {
            match &mut self.stream {
                Stream::Plain(s) => {
                    s.write_all(bytes).await?;
                    s.flush().await
                }
                Stream::Tls(s) => {
                    s.write_all(bytes).await?;
                    s.flush().await
                }
                Stream::Detached => Err(io::Error::from(io::ErrorKind::NotConnected)),
            }
        })
        .await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.io_error(e, during)),
            Err(_) => Err(self.timed_out(during)),
        }
    }

    /// The next whole response, reading as needed; each read waits at most the timeout.
    pub(crate) async fn read_response(
        &mut self,
        during: &'static str,
    ) -> Result<Response, SieveError> {
        loop {
            match parse_response(&self.buf) {
                Ok(Some((response, used))) => {
                    self.buf.drain(..used);
                    return Ok(response);
                }
                Ok(None) => {}
                Err(ParseError::TooBig { limit }) => {
                    return Err(SieveError::TooBig {
                        addr: self.addr.clone(),
                        limit,
                    })
                }
                Err(ParseError::Syntax { detail }) => {
                    return Err(SieveError::Protocol {
                        addr: self.addr.clone(),
                        detail,
                    })
                }
            }
            let start = self.buf.len();
            self.buf.resize(start + READ_CHUNK, 0);
            let timeout = self.timeout;
            let read = tokio::time::timeout(timeout, async {
                match &mut self.stream {
                    Stream::Plain(s) => s.read(&mut self.buf[start..]).await,
                    Stream::Tls(s) => s.read(&mut self.buf[start..]).await,
                    Stream::Detached => Err(io::Error::from(io::ErrorKind::NotConnected)),
                }
            })
            .await;
            match read {
                Ok(Ok(0)) => {
                    self.buf.truncate(start);
                    return Err(SieveError::Closed {
                        addr: self.addr.clone(),
                        during,
                    });
                }
                Ok(Ok(n)) => self.buf.truncate(start + n),
                Ok(Err(e)) => {
                    self.buf.truncate(start);
                    return Err(self.io_error(e, during));
                }
                Err(_) => {
                    self.buf.truncate(start);
                    return Err(self.timed_out(during));
                }
            }
        }
    }

    /// The first line of what was received but not understood, for an error message.
    pub(crate) fn pending_text(&self) -> String {
        let line = self.buf.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = &line[..line.len().min(200)];
        String::from_utf8_lossy(line).trim_end().to_string()
    }

    /// Closes the connection politely; errors do not matter any more.
    pub(crate) async fn shutdown(&mut self) {
        let timeout = self.timeout.min(Duration::from_secs(5));
        let _ = tokio::time::timeout(timeout, async {
            match &mut self.stream {
                Stream::Plain(s) => s.shutdown().await,
                Stream::Tls(s) => s.shutdown().await,
                Stream::Detached => Ok(()),
            }
        })
        .await;
    }

    fn io_error(&self, e: io::Error, during: &'static str) -> SieveError {
        if self.is_tls() && e.kind() == io::ErrorKind::InvalidData {
            // A TLS record that does not decrypt or a TLS alert.
            return SieveError::Tls {
                addr: self.addr.clone(),
                source: e,
            };
        }
        tracing::debug!(addr = %self.addr, error = %e, during, "ManageSieve connection lost");
        SieveError::Closed {
            addr: self.addr.clone(),
            during,
        }
    }

    fn timed_out(&self, during: &'static str) -> SieveError {
        SieveError::Timeout {
            addr: self.addr.clone(),
            seconds: self.timeout.as_secs(),
            during,
        }
    }
}

/// The IMAP client's TCP connect (lookup and every attempt under the timeout), its errors
/// in ManageSieve's words.
async fn connect_tcp(
    host: &str,
    port: u16,
    addr: &str,
    timeout: Duration,
) -> Result<TcpStream, SieveError> {
    use mailferry_imap::ImapError as E;
    mailferry_imap::connect_tcp(host, port, timeout)
        .await
        .map_err(|error| match error {
            E::Resolve { host, source } => SieveError::Resolve { host, source },
            E::Connect { source, .. } => SieveError::Connect {
                addr: addr.to_string(),
                source,
            },
            E::Timeout {
                seconds, during, ..
            } => SieveError::Timeout {
                addr: addr.to_string(),
                seconds,
                during,
            },
            other => SieveError::Connect {
                addr: addr.to_string(),
                source: io::Error::other(other.to_string()),
            },
        })
}
