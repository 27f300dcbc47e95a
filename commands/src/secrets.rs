//! Secrets: Argon2id password hashes, random tokens and their digests, and the deployment key.
//!
//! Passwords are hashed with Argon2id (default parameters: 19 MiB, 2 passes, which cost well over
//! 10 ms here) on the blocking pool, never on the async runtime, and at most half the cores hash at
//! once: a burst of logins queues for Argon2 instead of starving every other request of CPU. Tokens and client secrets are 160
//! random bits; only their SHA-256 digests are stored, which is safe because they are not guessable.
//!
//! Two secrets must be checked against something the log cannot hold in the clear: a TOTP shared
//! secret must be read back to compute codes, and a recovery code is short enough to brute-force
//! from a plain digest. The [`Vault`] holds the deployment key for both: it seals TOTP secrets
//! (XChaCha20-Poly1305, bound to their user and method) and keys recovery-code digests
//! (HMAC-SHA-256), so neither the log nor a copy of it reveals them without the key.

use std::io::Write as _;
use std::path::Path;
use std::sync::LazyLock;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use tokio::sync::Semaphore;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash as Phc;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use vigil_domain::id::{Digest, Id};
use vigil_domain::users::user::PasswordHash;
use vigil_domain::value::Sealed;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("the blocking pool is gone")]
    Pool,
}

/// A hash of a password nobody has, verified when a login names an unknown user so that an unknown
/// email costs the same time as a wrong password.
static DECOY: LazyLock<Option<String>> = LazyLock::new(|| {
    Argon2::default()
        .hash_password(b"vigil decoy password")
        .ok()
        .map(|hash| hash.to_string())
});

/// Permits to run Argon2: half the cores, at least one.
static HASHING: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Semaphore::new((cores / 2).max(1))
});

/// Runs `work` (Argon2) on the blocking pool once a hashing permit is free.
async fn hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SecretError> {
    let _permit = HASHING.acquire().await.map_err(|_| SecretError::Pool)?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| SecretError::Pool)
}

/// Hashes `password` with Argon2id and a random salt.
pub async fn hash_password(password: String) -> Result<PasswordHash, SecretError> {
    hashing(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| PasswordHash(hash.to_string()))
            .map_err(|e| SecretError::Hashing(e.to_string()))
    })
    .await?
}

/// Whether `password` matches `hash`; with no hash (unknown user) a decoy is verified so the answer
/// takes as long either way. The comparison inside argon2 is constant-time.
pub async fn verify_password(
    password: String,
    hash: Option<PasswordHash>,
) -> Result<bool, SecretError> {
    hashing(move || {
        let known = hash.is_some();
        let phc_text = match hash {
            Some(PasswordHash(text)) => text,
            None => DECOY.clone().unwrap_or_default(),
        };
        let Ok(phc) = Phc::new(&phc_text) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &phc)
            .is_ok()
            && known
    })
    .await
}

/// A new 40-hex-digit secret (token, client id, client secret), and its digest.
pub fn new_token() -> (String, Digest) {
    let token = hex::encode(rand::random::<[u8; 20]>());
    let digest = Digest::of(token.as_bytes());
    (token, digest)
}

/// A new 8-digit pin code, uniformly drawn.
pub fn new_pin() -> String {
    format!("{:08}", rand::random_range(0..100_000_000u32))
}

/// The digest under which a presented token is looked up.
pub fn token_digest(token: &str) -> Digest {
    Digest::of(token.as_bytes())
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the secrets key must be 64 hexadecimal digits (32 bytes)")]
    KeyFormat,
    #[error("cannot read or create the secrets key file {path}: {cause}")]
    KeyFile { path: String, cause: std::io::Error },
    #[error("a sealed secret could not be opened: wrong deployment key, or the log was altered")]
    Unseal,
    #[error("a secret could not be sealed")]
    Seal,
}

/// The version byte that starts every sealed secret.
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;

/// The deployment key, split into a sealing key and a digest key.
#[derive(Clone)]
pub struct Vault {
    seal: [u8; 32],
    digest: [u8; 32],
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault([redacted])")
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl Vault {
    /// The vault of a 32-byte deployment key; the two working keys are derived from it.
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            seal: hmac_sha256(&key, &[b"vigil seal v1"]),
            digest: hmac_sha256(&key, &[b"vigil digest v1"]),
        }
    }

    /// The vault of a key written as 64 hexadecimal digits.
    pub fn from_hex(text: &str) -> Result<Self, VaultError> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut key).map_err(|_| VaultError::KeyFormat)?;
        Ok(Self::new(key))
    }

    /// The key in `path`, created (random, readable by its owner only) if the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, VaultError> {
        let failed = |cause| VaultError::KeyFile {
            path: path.display().to_string(),
            cause,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(&text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                // Written whole to a private file first, then linked into place, so neither a
                // crash nor a second node starting at the same moment leaves a partial key.
                let key: [u8; 32] = rand::random();
                let draft = path
                    .with_extension(format!("draft-{}", hex::encode(rand::random::<[u8; 8]>())));
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let written = options.open(&draft).and_then(|mut file| {
                    writeln!(file, "{}", hex::encode(key))?;
                    file.sync_all()
                });
                let linked = written.and_then(|()| std::fs::hard_link(&draft, path));
                let _ = std::fs::remove_file(&draft);
                match linked {
                    Ok(()) => Ok(Self::new(key)),
                    Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::from_hex(&std::fs::read_to_string(path).map_err(failed)?)
                    }
                    Err(error) => Err(failed(error)),
                }
            }
            Err(error) => Err(failed(error)),
        }
    }

    /// Seals `secret`, bound to `context`: it opens only with the same key and context.
    pub fn seal(&self, secret: &[u8], context: &[u8]) -> Result<Sealed, VaultError> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let cipher = XChaCha20Poly1305::new(&self.seal.into());
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: context,
                },
            )
            .map_err(|_| VaultError::Seal)?;
        let mut bytes = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        bytes.push(SEALED_V1);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Ok(Sealed(bytes))
    }

    /// The secret `sealed` holds, if it was sealed with this key for `context`.
    pub fn open(&self, sealed: &Sealed, context: &[u8]) -> Result<Vec<u8>, VaultError> {
        let Some((&SEALED_V1, rest)) = sealed.0.split_first() else {
            return Err(VaultError::Unseal);
        };
        if rest.len() < NONCE_LEN {
            return Err(VaultError::Unseal);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::Unseal)?;
        XChaCha20Poly1305::new(&self.seal.into())
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| VaultError::Unseal)
    }

    /// What tells this key from another without revealing it.
    pub fn fingerprint(&self) -> Digest {
        self.keyed_digest(b"vigil secrets key fingerprint")
    }

    /// The digest of a mailed pin code for `user_id`: keyed, since eight digits are searched in
    /// moments from a plain digest.
    pub fn pin_digest(&self, user_id: Id, pin: &str) -> Digest {
        self.keyed_digest(format!("verification pin {user_id} {}", pin.trim()).as_bytes())
    }

    /// A digest of `value` that only this key can reproduce.
    pub fn keyed_digest(&self, value: &[u8]) -> Digest {
        Digest::from_bytes(hmac_sha256(&self.digest, &[value]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        // Argon2id, 19 MiB, 2 passes, 1 lane (OWASP's minimum; its cost here is reported by
        // `vigil-bench authenticate`).
        assert!(
            hash.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.0
        );
        assert!(
            verify_password("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify_password("wrong horse".into(), Some(hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        assert!(
            !verify_password("vigil decoy password".into(), None)
                .await
                .unwrap()
        );
    }

    #[test]
    fn tokens_are_forty_hex_digits_with_matching_digests() {
        let (token, digest) = new_token();
        assert_eq!(token.len(), 40);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(token_digest(&token).ct_eq(&digest));
        assert!(!token_digest("other").ct_eq(&digest));
    }

    #[test]
    fn a_sealed_secret_opens_with_its_key_and_context_only() {
        let vault = Vault::new([7; 32]);
        let sealed = vault.seal(b"totp secret", b"user 1").unwrap();
        assert_eq!(vault.open(&sealed, b"user 1").unwrap(), b"totp secret");
        assert!(!sealed.0.windows(11).any(|w| w == b"totp secret"));
        assert!(vault.open(&sealed, b"user 2").is_err());
        assert!(Vault::new([8; 32]).open(&sealed, b"user 1").is_err());
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.0.last_mut() {
            *last ^= 1;
        }
        assert!(vault.open(&tampered, b"user 1").is_err());
        assert!(vault.open(&Sealed(vec![]), b"user 1").is_err());
        assert!(
            vault
                .open(&Sealed(vec![SEALED_V1, 1, 2]), b"user 1")
                .is_err()
        );
        // A fresh nonce every time.
        assert_ne!(vault.seal(b"totp secret", b"user 1").unwrap(), sealed);
    }

    #[test]
    fn keyed_digests_depend_on_the_key() {
        let vault = Vault::new([7; 32]);
        assert!(
            vault
                .keyed_digest(b"ABCDE")
                .ct_eq(&vault.keyed_digest(b"ABCDE"))
        );
        assert!(
            !vault
                .keyed_digest(b"ABCDE")
                .ct_eq(&Vault::new([8; 32]).keyed_digest(b"ABCDE"))
        );
        assert!(!vault.keyed_digest(b"ABCDE").ct_eq(&Digest::of(b"ABCDE")));
    }

    #[test]
    fn the_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        let first = Vault::load_or_create(&path).unwrap();
        let sealed = first.seal(b"s", b"c").unwrap();
        let again = Vault::load_or_create(&path).unwrap();
        assert_eq!(again.open(&sealed, b"c").unwrap(), b"s");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            Vault::load_or_create(&path),
            Err(VaultError::KeyFormat)
        ));
    }
}
