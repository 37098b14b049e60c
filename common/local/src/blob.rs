//! [`BlobStore`] on the local file system: objects are files under a root directory, written
//! atomically (temp file + rename) so a reader never sees half an object.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use async_trait::async_trait;
use chrono::Utc;

use crate::signing::UrlSigner;
use minimoto_common::{
    error::{Error, Result},
    ports::{BlobStore, SignedUrl},
};

#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
    signer: UrlSigner,
}

impl LocalBlobStore {
    pub fn new(root: PathBuf, signer: UrlSigner) -> Self {
        Self { root, signer }
    }

    /// The file behind `key`, after checking the key cannot escape the root.
    pub fn path_of(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    pub fn signer(&self) -> &UrlSigner {
        &self.signer
    }
}

/// Keys are `/`-separated segments of `[A-Za-z0-9._-]`, none empty, `.` or `..`.
fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!("`{key}` is not a valid blob key")))
    }
}

fn not_found(key: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::NotFound(format!("blob {key}"))
    } else {
        e.into()
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put_file(&self, key: &str, path: &Path, _content_type: &str) -> Result<u64> {
        let dest = self.path_of(key)?;
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let tmp = dest.with_file_name(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        let size = match tokio::fs::copy(path, &tmp).await {
            Ok(size) => size,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e.into());
            }
        };
        tokio::fs::rename(&tmp, &dest).await?;
        Ok(size)
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
        tokio::fs::copy(self.path_of(key)?, path)
            .await
            .map_err(|e| not_found(key, e))
    }

    async fn size(&self, key: &str) -> Result<Option<u64>> {
        match tokio::fs::metadata(self.path_of(key)?).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let trimmed = prefix.trim_end_matches('/');
        let path = self.path_of(trimmed)?;
        // Keys are paths, so a prefix ending at a segment is a directory (or one file).
        let count = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => {
                    let n = count_files(&path)?;
                    std::fs::remove_dir_all(&path)?;
                    Ok(n)
                }
                Ok(_) => std::fs::remove_file(&path).map(|()| 1),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(|e| Error::backend("filesystem", e))??;
        Ok(count)
    }

    async fn url(&self, key: &str, ttl: Duration) -> Result<SignedUrl> {
        check_key(key)?;
        let ttl = chrono::Duration::from_std(ttl)
            .map_err(|e| Error::Invalid(format!("url lifetime: {e}")))?;
        let expires_at = Utc::now() + ttl;
        Ok(SignedUrl {
            url: self.signer.url(key, expires_at),
            expires_at,
        })
    }

    async fn ready(&self) -> Result<()> {
        tokio::fs::create_dir_all(&self.root).await?;
        Ok(())
    }
}

fn count_files(dir: &Path) -> std::io::Result<u64> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        n += if entry.file_type()?.is_dir() {
            count_files(&entry.path())?
        } else {
            1
        };
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_the_root() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../../b",
            "a//b",
            "./a",
            "a/b/",
            "a b",
            "a\\b",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?} must be refused");
        }
        for good in ["a", "jobs/0191/inputs/001.jpg", "a-b_c.d"] {
            assert!(check_key(good).is_ok(), "{good:?} must be accepted");
        }
    }
}
