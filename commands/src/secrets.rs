//! Secrets: Argon2id password hashes, random tokens and their digests.
//!
//! Passwords are hashed with Argon2id (default parameters: 19 MiB, 2 passes, which cost well over
//! 10 ms here) on the blocking pool, never on the async runtime, and at most half the cores hash at
//! once: a burst of logins queues for Argon2 instead of starving every other request of CPU. Tokens and client secrets are 160
//! random bits; only their SHA-256 digests are stored, which is safe because they are not guessable.

use std::sync::LazyLock;

use tokio::sync::Semaphore;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash as Phc;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use vigil_domain::id::Digest;
use vigil_domain::user::PasswordHash;

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

/// The digest under which a presented token is looked up.
pub fn token_digest(token: &str) -> Digest {
    Digest::of(token.as_bytes())
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
}
