//! The nonces of signed requests (OAuth 1.0a), kept in the read store so that every node sees the
//! nonces every other node accepted: a captured request replayed on another node is refused too.
//! One indexed insert per request, whatever the number of nonces kept.

use crate::store::ReadStore;

/// Records `key` until `expires_at` (Unix seconds); whether it was unused at `now` (never seen,
/// or seen with an expiry already past).
pub async fn first_use(
    store: &ReadStore,
    key: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    crate::with_pool!(store, pool => {
        sqlx::query(
            "INSERT INTO oauth1_nonces (nonce_key, expires_at) VALUES ($1, $2) \
             ON CONFLICT (nonce_key) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE oauth1_nonces.expires_at < $3",
        )
        .bind(key)
        .bind(expires_at)
        .bind(now)
        .execute(pool)
        .await
        .map(|done| done.rows_affected() == 1)
    })
}

/// Deletes the nonces expired at `now`; how many.
pub async fn forget_expired(store: &ReadStore, now: i64) -> Result<u64, sqlx::Error> {
    crate::with_pool!(store, pool => {
        sqlx::query("DELETE FROM oauth1_nonces WHERE expires_at < $1")
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_nonce_is_used_once_until_it_expires_and_expired_ones_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReadStore::sqlite(&dir.path().join("read.sqlite"))
            .await
            .unwrap();
        assert!(first_use(&store, "a", 1_300, 1_000).await.unwrap());
        assert!(!first_use(&store, "a", 1_310, 1_010).await.unwrap());
        assert!(!first_use(&store, "a", 1_600, 1_300).await.unwrap());
        assert!(first_use(&store, "b", 1_300, 1_000).await.unwrap());
        // Past its expiry, the same key is new again.
        assert!(first_use(&store, "a", 1_601, 1_301).await.unwrap());
        assert_eq!(forget_expired(&store, 1_400).await.unwrap(), 1);
        assert!(!first_use(&store, "a", 1_700, 1_400).await.unwrap());
    }
}
