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
        let tmp = dest.with_file_name(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        let size = match tokio::fs::copy(path, &tmp).await {
            Ok(size) => size,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e.into());
            }
        };
        minimoto_common::crash::point("blob-written");
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

    async fn folders(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let dir = self.path_of(prefix.trim_end_matches('/'))?;
        let after = start_after.map(str::to_owned);
        let listed = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<String>> {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let mut names = Vec::new();
            for entry in entries {
                let entry = entry?;
                if !entry.file_type()?.is_dir() {
                    continue;
                }
                // Compared as `name/`, the order S3 lists folders in.
                if let Ok(name) = entry.file_name().into_string()
                    && after
                        .as_deref()
                        .is_none_or(|a| format!("{name}/") > format!("{a}/"))
                {
                    names.push(name);
                }
            }
            names.sort_unstable_by_key(|n| format!("{n}/"));
            names.truncate(limit);
            Ok(names)
        })
        .await
        .map_err(|e| Error::backend("filesystem", e))??;
        Ok(listed)
    }

    async fn remove_debris(&self, older_than: Duration) -> Result<u64> {
        let root = self.root.clone();
        let removed = tokio::task::spawn_blocking(move || remove_temp_files(&root, older_than))
            .await
            .map_err(|e| Error::backend("filesystem", e))??;
        if removed > 0 {
            tracing::info!(removed, "removed the temporary files of interrupted writes");
        }
        Ok(removed)
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

/// The name prefix of a file being written (renamed to its key once complete).
const TEMP_PREFIX: &str = ".tmp-";

/// Removes, under `dir`, the temporary files last modified more than `older_than` ago: a write
/// in flight touches its file as it goes, so only a dead writer's file gets that old.
fn remove_temp_files(dir: &Path, older_than: Duration) -> std::io::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            removed += remove_temp_files(&entry.path(), older_than)?;
        } else if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let age = entry
                .metadata()?
                .modified()?
                .elapsed()
                .unwrap_or(Duration::ZERO);
            if age >= older_than {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    // Renamed into place, or removed by another sweeper, since it was listed.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(removed)
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

    #[test]
    fn only_temporary_files_older_than_the_bound_are_debris() {
        let dir = tempfile::tempdir().expect("tempdir");
        let job = dir.path().join("inputs/j1");
        std::fs::create_dir_all(&job).expect("mkdir");
        let old = job.join(".tmp-old");
        let fresh = job.join(".tmp-fresh");
        let object = job.join("0000.jpeg");
        for f in [&old, &fresh, &object] {
            std::fs::write(f, b"x").expect("write");
        }
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        for f in [&old, &object] {
            std::fs::File::options()
                .write(true)
                .open(f)
                .and_then(|f| f.set_modified(hour_ago))
                .expect("age");
        }
        assert_eq!(
            remove_temp_files(dir.path(), Duration::from_secs(600)).expect("sweep"),
            1
        );
        assert!(!old.exists() && fresh.exists() && object.exists());
    }
}
