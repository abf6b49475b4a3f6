//! The migration allowance: [`FREE_MIGRATIONS`] plus licence keys, each worth a number of
//! migrations, that add up.
//!
//! # Keys
//! A key is a compact text token, `mfl1.<payload>.<signature>` (both base64url without
//! padding): the payload is JSON `{"id","n","to","iat"}` (key id, migrations, issued to,
//! issued at in Unix seconds), the signature an Ed25519 signature of `mfl1.<payload>` by
//! the operator's signing key. A service verifies keys offline against the operator's
//! public key ([`ServiceConfig::licence_public_key`](crate::ServiceConfig)); by default
//! that is the lab key pair's ([`LAB_PUBLIC_KEY`], signing key in
//! `docs/licence-lab-signing.key`), which anyone can sign with: production services set
//! their own with `MAILFERRY_LICENCE_PUBLIC_KEY`. A key changed by one byte, or signed by
//! another key, is refused; a key counts once (by its id).
//!
//! # Counting
//! A migration is counted when it is stored, in the same transaction
//! ([`mailferry_store::Store::insert_migrations`]); a failed check counts nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use mailferry_store::{LicenceRecord, Store, StoreError};
use serde::{Deserialize, Serialize};

/// Migrations every service may submit without a key.
pub const FREE_MIGRATIONS: u64 = 2;

/// The public half of the lab key pair (the signing half is `docs/licence-lab-signing.key`).
pub const LAB_PUBLIC_KEY: &str = "x4zj9gQ754XlWKWfB44HAmKyeqVpSOeShJpgdEYGqNs";

/// The most migrations one key may carry.
pub const MAX_KEY_MIGRATIONS: u64 = 1_000_000;

const PREFIX: &str = "mfl1";

/// What a key says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Licence {
    pub id: String,
    #[serde(rename = "n")]
    pub migrations: u64,
    #[serde(rename = "to")]
    pub issued_to: String,
    #[serde(rename = "iat")]
    pub issued_at: i64,
}

/// Why a key is refused.
#[derive(Debug, thiserror::Error)]
pub enum LicenceError {
    #[error("this is not a mailferry licence key: {0}")]
    Malformed(String),
    #[error("the licence key's signature does not match: the key was changed (copy it again, whole), or it was signed for another mailferry operator")]
    Signature,
    #[error("licence key {id} was added before; a key counts once")]
    AlreadyAdded { id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Remaining of total, and how it adds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Allowance {
    pub free: u64,
    pub licensed: u64,
    pub total: u64,
    pub used: u64,
    pub remaining: u64,
}

/// Signs a key.
pub fn issue(signing_key: &SigningKey, licence: &Licence) -> String {
    let payload = serde_json::to_vec(licence).expect("a licence serialises");
    let signed = format!("{PREFIX}.{}", B64.encode(payload));
    let signature = signing_key.sign(signed.as_bytes());
    format!("{signed}.{}", B64.encode(signature.to_bytes()))
}

/// Checks a key's form and signature, and reads it. Whitespace (a key wrapped over lines
/// by a mail program) is ignored.
pub fn verify(text: &str, public_key: &VerifyingKey) -> Result<Licence, LicenceError> {
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let malformed = |what: &str| LicenceError::Malformed(what.to_string());
    let mut parts = text.split('.');
    let (Some(prefix), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "a key has three parts separated by dots, starting with `mfl1.`",
        ));
    };
    if prefix != PREFIX {
        return Err(malformed("a key starts with `mfl1.`"));
    }
    let signature = B64
        .decode(signature)
        .ok()
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
        .ok_or(LicenceError::Signature)?;
    public_key
        .verify_strict(
            format!("{prefix}.{payload}").as_bytes(),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| LicenceError::Signature)?;
    // Signed by the operator: what follows only guards against an operator's mistake.
    let licence: Licence = B64
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| malformed("its contents cannot be read"))?;
    if licence.id.trim().is_empty() || licence.issued_to.trim().is_empty() {
        return Err(malformed("it names no id or no licensee"));
    }
    if !(1..=MAX_KEY_MIGRATIONS).contains(&licence.migrations) {
        return Err(malformed("it carries no migrations"));
    }
    Ok(licence)
}

/// Reads a public key: 32 bytes, base64url (as `mailferry licence keygen` prints it).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    B64.decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        .ok_or_else(|| {
            "a licence public key is 43 characters of base64url, as `mailferry licence keygen` prints it"
                .to_string()
        })
}

/// The lab key pair's public key.
pub fn lab_public_key() -> VerifyingKey {
    parse_public_key(LAB_PUBLIC_KEY).expect("the lab public key is valid")
}

/// Reads a signing key file: its 32-byte secret as base64url, after `#` comment lines.
pub fn parse_signing_key(text: &str) -> Result<SigningKey, String> {
    let secret: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    B64.decode(secret)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .map(|bytes| SigningKey::from_bytes(&bytes))
        .ok_or_else(|| {
            "a signing key file holds one line of base64url (32 bytes), as `mailferry licence keygen` writes it".to_string()
        })
}

/// A new key pair: the signing key file's text and the public key.
pub fn new_key_pair() -> (String, String) {
    let signing_key = SigningKey::generate(&mut rand::rngs::OsRng);
    let file = format!(
        "# mailferry licence signing key: keep it secret; it mints migrations.\n{}\n",
        B64.encode(signing_key.to_bytes())
    );
    (file, B64.encode(signing_key.verifying_key().to_bytes()))
}

/// Remaining of total.
pub async fn allowance(store: &Store) -> Result<Allowance, StoreError> {
    let record = store.allowance().await?;
    let total = FREE_MIGRATIONS + record.licensed;
    Ok(Allowance {
        free: FREE_MIGRATIONS,
        licensed: record.licensed,
        total,
        used: record.used,
        remaining: total.saturating_sub(record.used),
    })
}

/// Verifies a key and adds it.
pub async fn add_key(
    store: &Store,
    public_key: &VerifyingKey,
    text: &str,
    now: i64,
) -> Result<Licence, LicenceError> {
    let licence = verify(text, public_key)?;
    let record = LicenceRecord {
        id: licence.id.clone(),
        migrations: licence.migrations,
        issued_to: licence.issued_to.clone(),
        issued_at: licence.issued_at,
        added_at: now,
        key_text: text.chars().filter(|c| !c.is_whitespace()).collect(),
    };
    if !store.add_licence_key(&record).await? {
        return Err(LicenceError::AlreadyAdded { id: licence.id });
    }
    Ok(licence)
}

/// The message for a submission the allowance cannot cover.
pub fn short_message(short: mailferry_store::Short) -> String {
    match short.remaining {
        0 => "the migration allowance is used up: no migration can be submitted".to_string(),
        1 => format!(
            "the migration allowance has 1 migration left, and this submission needs {}",
            short.wanted
        ),
        n => format!(
            "the migration allowance has {n} migrations left, and this submission needs {}: submit at most {n}",
            short.wanted
        ),
    }
}

/// What to do about it.
pub const SHORT_HINT: &str = "add a licence key (`mailferry licence add KEY`, POST /api/v1/licences, or the Licences tab); keys add up";

#[cfg(test)]
mod tests {
    use super::*;

    fn licence() -> Licence {
        Licence {
            id: "k-1".into(),
            migrations: 25,
            issued_to: "Example Hosting".into(),
            issued_at: 1_790_000_000,
        }
    }

    #[test]
    fn a_key_verifies_only_whole_and_under_its_own_public_key() {
        let (file, public) = new_key_pair();
        let signing = parse_signing_key(&file).unwrap();
        let public = parse_public_key(&public).unwrap();
        let key = issue(&signing, &licence());
        assert_eq!(verify(&key, &public).unwrap(), licence());
        // Wrapped over lines by a mail program: still the same key.
        let wrapped = key
            .as_bytes()
            .chunks(40)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\n  ");
        assert_eq!(verify(&wrapped, &public).unwrap(), licence());
        // Every single changed byte is refused.
        for at in 0..key.len() {
            let mut bytes = key.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            if changed != key {
                assert!(verify(&changed, &public).is_err(), "byte {at} changed");
            }
        }
        // Signed by another key.
        let (other, _) = new_key_pair();
        let forged = issue(&parse_signing_key(&other).unwrap(), &licence());
        assert!(matches!(
            verify(&forged, &public),
            Err(LicenceError::Signature)
        ));
        assert!(matches!(
            verify("hello", &public),
            Err(LicenceError::Malformed(_))
        ));
    }

    #[test]
    fn the_lab_key_pair_matches() {
        let file = include_str!("../../../docs/licence-lab-signing.key");
        let signing = parse_signing_key(file).unwrap();
        assert_eq!(signing.verifying_key(), lab_public_key());
    }
}
