//! Credentials at rest: sealed with XChaCha20-Poly1305 under a key kept in a file (created
//! 0600 on first start) or given by `MAILFERRY_SECRET_KEY` (base64 of 32 bytes). A random
//! 24-byte nonce per secret; the migration id and side are bound as associated data, so a
//! sealed secret cannot be moved to another migration or side.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot read or create the key file `{path}`")]
    KeyFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the key in {origin} is not 32 bytes of base64")]
    BadKey { origin: String },
    #[error("a stored credential cannot be opened: the key changed, or the data was altered")]
    Open,
}

/// Seals and opens secrets.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    /// The key from `MAILFERRY_SECRET_KEY`, else from `path`, created there if missing.
    pub fn load_or_create(path: &Path) -> Result<Self, SealError> {
        if let Ok(text) = std::env::var("MAILFERRY_SECRET_KEY") {
            return Self::from_base64(&text, "MAILFERRY_SECRET_KEY");
        }
        let fail = |source| SealError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                Self::from_base64(text.trim(), &format!("the key file `{}`", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = XChaCha20Poly1305::generate_key(&mut OsRng);
                let text = Zeroizing::new(BASE64.encode(key));
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(fail)?;
                file.write_all(text.as_bytes()).map_err(fail)?;
                file.sync_all().map_err(fail)?;
                Ok(Self {
                    cipher: XChaCha20Poly1305::new(&key),
                })
            }
            Err(e) => Err(fail(e)),
        }
    }

    fn from_base64(text: &str, origin: &str) -> Result<Self, SealError> {
        let bytes = Zeroizing::new(BASE64.decode(text.trim()).map_err(|_| SealError::BadKey {
            origin: origin.into(),
        })?);
        if bytes.len() != 32 {
            return Err(SealError::BadKey {
                origin: origin.into(),
            });
        }
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| SealError::BadKey {
            origin: origin.into(),
        })?;
        Ok(Self { cipher })
    }

    /// nonce || ciphertext, bound to `context` (migration id and side).
    pub fn seal(&self, secret: &[u8], context: &str) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: secret,
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory data");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < 24 {
            return Err(SealError::Open);
        }
        let (nonce, body) = sealed.split_at(24);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let sealer = Sealer::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let sealed = sealer.seal(b"hunter2", "m1/source");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(&**sealer.open(&sealed, "m1/source").unwrap(), b"hunter2");
        assert!(
            sealer.open(&sealed, "m1/target").is_err(),
            "bound to its context"
        );
        let mut bad = sealed.clone();
        bad[30] ^= 1;
        assert!(sealer.open(&bad, "m1/source").is_err());
        let again = Sealer::load_or_create(&path).unwrap();
        assert_eq!(
            &**again.open(&sealed, "m1/source").unwrap(),
            b"hunter2",
            "the same key after a restart"
        );
    }
}
