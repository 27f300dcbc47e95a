//! Content kept outside the log, by its SHA-256: function code today, file contents next. The log
//! records a blob's digest; the blob store keeps its bytes once per digest.
//!
//! Two backends, chosen like the log: a directory on disk for the embedded deployment, and a
//! JetStream object store bucket (`<prefix>_blobs`) for the NATS deployment, so every node sees
//! every blob. A blob read back is checked against its digest.

use std::path::{Path, PathBuf};

use async_nats::jetstream::{self, object_store::ObjectStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vigil_domain::id::Digest;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the blob store is unavailable: {0}")]
    Unavailable(String),
    #[error("blob {0} does not match its digest: the stored copy is damaged")]
    Damaged(Digest),
}

fn unavailable(error: impl std::fmt::Display) -> BlobError {
    BlobError::Unavailable(error.to_string())
}

/// Where blobs are kept. Cheap to clone.
#[derive(Clone)]
pub enum Blobs {
    /// `<dir>/<first two hex digits>/<digest>`.
    Directory(PathBuf),
    JetStream(Box<ObjectStore>),
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Directory(dir) => write!(f, "Blobs::Directory({})", dir.display()),
            Self::JetStream(_) => f.write_str("Blobs::JetStream"),
        }
    }
}

impl Blobs {
    /// The blobs in `dir`, made if needed (readable by Vigil's user only).
    pub fn directory(dir: &Path) -> Result<Self, BlobError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(unavailable)?;
        Ok(Self::Directory(dir.to_owned()))
    }

    /// The bucket `<prefix>_blobs` of the JetStream behind `context`, made if needed.
    pub async fn jetstream(context: &jetstream::Context, prefix: &str) -> Result<Self, BlobError> {
        let bucket = bucket(prefix);
        let store = match context.get_object_store(&bucket).await {
            Ok(store) => store,
            Err(_) => context
                .create_object_store(jetstream::object_store::Config {
                    bucket: bucket.clone(),
                    description: Some("Vigil's blobs, by SHA-256".into()),
                    ..Default::default()
                })
                .await
                .map_err(|e| unavailable(format!("cannot open bucket {bucket}: {e}")))?,
        };
        Ok(Self::JetStream(Box::new(store)))
    }

    /// Keeps `bytes`; their digest. Keeping the same bytes again changes nothing.
    pub async fn put(&self, bytes: &[u8]) -> Result<Digest, BlobError> {
        let digest = Digest::of(bytes);
        match self {
            Self::Directory(dir) => {
                let path = blob_path(dir, &digest);
                if tokio::fs::try_exists(&path).await.map_err(unavailable)? {
                    return Ok(digest);
                }
                let parent = path.parent().unwrap_or(dir);
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(unavailable)?;
                // Written aside and renamed into place, so a blob is whole or absent.
                let partial = parent.join(format!(".{digest}.{}", rand::random::<u64>()));
                let written = async {
                    let mut file = tokio::fs::File::create(&partial).await?;
                    file.write_all(bytes).await?;
                    file.sync_all().await?;
                    tokio::fs::rename(&partial, &path).await
                }
                .await;
                if let Err(error) = written {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(unavailable(error));
                }
            }
            Self::JetStream(store) => {
                let name = digest.to_string();
                if store.info(&name).await.is_ok_and(|info| !info.deleted) {
                    return Ok(digest);
                }
                let mut reader = bytes;
                store
                    .put(name.as_str(), &mut reader)
                    .await
                    .map_err(unavailable)?;
            }
        }
        Ok(digest)
    }

    /// The bytes kept under `digest`, if any, checked against it.
    pub async fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>, BlobError> {
        let bytes = match self {
            Self::Directory(dir) => match tokio::fs::read(blob_path(dir, digest)).await {
                Ok(bytes) => bytes,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(error) => return Err(unavailable(error)),
            },
            Self::JetStream(store) => {
                use async_nats::jetstream::object_store::GetErrorKind;
                let mut object = match store.get(digest.to_string()).await {
                    Ok(object) => object,
                    Err(error) if error.kind() == GetErrorKind::NotFound => return Ok(None),
                    Err(error) => return Err(unavailable(error)),
                };
                let mut bytes = Vec::new();
                object.read_to_end(&mut bytes).await.map_err(unavailable)?;
                bytes
            }
        };
        if Digest::of(&bytes) != *digest {
            return Err(BlobError::Damaged(*digest));
        }
        Ok(Some(bytes))
    }
}

/// The object store bucket of the deployment with `prefix`.
pub fn bucket(prefix: &str) -> String {
    format!("{prefix}_blobs")
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    let hex = digest.to_string();
    dir.join(&hex[..2]).join(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_blob_is_kept_once_and_read_back_checked() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::directory(&dir.path().join("blobs")).unwrap();
        let digest = blobs.put(b"code").await.unwrap();
        assert_eq!(blobs.put(b"code").await.unwrap(), digest);
        assert_eq!(
            blobs.get(&digest).await.unwrap().as_deref(),
            Some(&b"code"[..])
        );
        assert_eq!(blobs.get(&Digest::of(b"other")).await.unwrap(), None);
        let Blobs::Directory(root) = &blobs else {
            unreachable!()
        };
        std::fs::write(blob_path(root, &digest), b"c0de").unwrap();
        assert!(matches!(
            blobs.get(&digest).await,
            Err(BlobError::Damaged(d)) if d == digest
        ));
    }
}
