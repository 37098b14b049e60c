//! Expiring download URLs for the embedded blob store, signed with HMAC-SHA256.
//!
//! A URL is `{base}/files/{key}?expires={unix seconds}&signature={hex}`; the signature covers the
//! key and the expiry, so neither can be changed. The key lives in `<data>/url-signing.key`
//! (created on first start), so URLs stay valid across restarts.

use std::{fmt, path::Path};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use minimoto_common::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// The route prefix under which the API serves signed downloads.
pub const FILES_ROUTE: &str = "/files";

#[derive(Clone)]
pub struct UrlSigner {
    secret: Vec<u8>,
    base_url: String,
}

impl fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlSigner")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Why a signed URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("the download link is not valid")]
    BadSignature,
    #[error("the download link has expired")]
    Expired,
}

impl UrlSigner {
    /// `base_url` is where clients reach the API, e.g. `http://127.0.0.1:8080`.
    pub fn new(secret: Vec<u8>, base_url: &str) -> Self {
        Self {
            secret,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Reads the signing key from `path`, creating a random one the first time.
    pub fn load_or_create_secret(path: &Path) -> Result<Vec<u8>> {
        match std::fs::read(path) {
            Ok(secret) if secret.len() >= 32 => return Ok(secret),
            Ok(_) => {
                return Err(Error::Invalid(format!(
                    "{} holds fewer than 32 bytes",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let mut secret = vec![0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| Error::backend("random", e))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Only this user may read the key (it can mint links to every file), and of two processes
        // starting at once only one may create it: the other reads what the first wrote.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                std::io::Write::write_all(&mut file, &secret)?;
                file.sync_all()?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Give the creator a moment to finish writing.
                for _ in 0..50 {
                    match std::fs::read(path) {
                        Ok(existing) if existing.len() >= 32 => return Ok(existing),
                        _ => std::thread::sleep(std::time::Duration::from_millis(20)),
                    }
                }
                return Err(Error::Invalid(format!(
                    "{} holds fewer than 32 bytes",
                    path.display()
                )));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(secret)
    }

    fn mac(&self, key: &str, expires: i64) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!());
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    pub fn url(&self, key: &str, expires_at: DateTime<Utc>) -> String {
        let expires = expires_at.timestamp();
        let signature = hex::encode(self.mac(key, expires).finalize().into_bytes());
        format!(
            "{}{FILES_ROUTE}/{key}?expires={expires}&signature={signature}",
            self.base_url
        )
    }

    /// Checks a URL's signature (in constant time) and then its expiry.
    pub fn verify(
        &self,
        key: &str,
        expires: i64,
        signature: &str,
        now: DateTime<Utc>,
    ) -> Result<(), UrlRefusal> {
        let sig = hex::decode(signature).map_err(|_| UrlRefusal::BadSignature)?;
        self.mac(key, expires)
            .verify_slice(&sig)
            .map_err(|_| UrlRefusal::BadSignature)?;
        if now.timestamp() > expires {
            return Err(UrlRefusal::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn parts(url: &str) -> (String, i64, String) {
        let rest = url.strip_prefix("http://h:1/files/").expect("prefix");
        let (key, query) = rest.split_once('?').expect("query");
        let (e, s) = query.split_once('&').expect("two params");
        let expires = e
            .strip_prefix("expires=")
            .and_then(|e| e.parse().ok())
            .expect("expires");
        (
            key.into(),
            expires,
            s.strip_prefix("signature=").expect("sig").into(),
        )
    }

    #[test]
    fn signed_urls_verify_until_they_expire_and_resist_tampering() {
        let signer = UrlSigner::new(vec![7; 32], "http://h:1/");
        let now = Utc::now();
        let (key, expires, sig) =
            parts(&signer.url("jobs/a/video.mp4", now + Duration::seconds(60)));
        assert_eq!(key, "jobs/a/video.mp4");
        assert_eq!(signer.verify(&key, expires, &sig, now), Ok(()));
        assert_eq!(
            signer.verify(&key, expires, &sig, now + Duration::seconds(61)),
            Err(UrlRefusal::Expired)
        );
        assert_eq!(
            signer.verify("jobs/b/video.mp4", expires, &sig, now),
            Err(UrlRefusal::BadSignature)
        );
        assert_eq!(
            signer.verify(&key, expires + 3600, &sig, now),
            Err(UrlRefusal::BadSignature)
        );
        assert_eq!(
            signer.verify(&key, expires, "zz", now),
            Err(UrlRefusal::BadSignature)
        );
        let other = UrlSigner::new(vec![8; 32], "http://h:1");
        assert_eq!(
            other.verify(&key, expires, &sig, now),
            Err(UrlRefusal::BadSignature)
        );
    }

    #[test]
    fn the_secret_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k/url-signing.key");
        let a = UrlSigner::load_or_create_secret(&path).expect("create");
        let b = UrlSigner::load_or_create_secret(&path).expect("reload");
        assert_eq!(a.len(), 32);
        assert_eq!(a, b);
        assert_ne!(a, vec![0; 32]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "only the owner may read the signing key"
            );
        }
    }
}
