//! API keys: who may call the API, as which tenant, within which limits.
//!
//! Keys live in a JSON file ([`KeyFile`]) that stores only their SHA-256 hashes, so the file
//! never holds a usable key. `minimoto keys add` makes a key (`mm_<id>_<secret>`, 256 random
//! bits) and prints it once. The running API re-reads the file when it changes ([`KeyRing`]),
//! so `keys add` and `keys revoke` take effect within a second, with no restart.
//!
//! The hash is compared whole; a timing difference reveals nothing about the key (finding a
//! key from its hash is a preimage search over 256 bits), so no slow password hash is needed.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, Instant, SystemTime},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The keys file's name in the data directory, where the API and `minimoto keys` look by default.
pub const FILE_NAME: &str = "keys.json";

/// What a key allows, unless the key says otherwise.
pub const DEFAULT_RATE_PER_MINUTE: u32 = 600;
/// Jobs a tenant may have queued or running at once, unless its key says otherwise.
pub const DEFAULT_MAX_ACTIVE_JOBS: u32 = 20;
/// Longest tenant name: it is part of every job record and index key.
pub const MAX_TENANT_CHARS: usize = 64;

/// The keys file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub keys: Vec<KeyEntry>,
    /// What belongs to a tenant rather than to one of its keys: its webhook signing secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tenants: BTreeMap<String, TenantEntry>,
}

/// A tenant's own settings. (Its `Debug` hides the secret, so no log line or panic shows it.)
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantEntry {
    /// Signs the tenant's webhooks (`X-Minimoto-Signature`): `whsec_` and 64 hex digits. Kept
    /// as is (the server needs it to sign), so the file is readable by its owner only.
    pub webhook_secret: String,
}

impl std::fmt::Debug for TenantEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantEntry")
            .field("webhook_secret", &"whsec_<redacted>")
            .finish()
    }
}

/// One key, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// The public part of the key, `key_` and 8 hex digits: what `keys list` and `keys revoke`
    /// name, and what logs show.
    pub id: String,
    pub tenant: String,
    /// SHA-256 of the whole key, in hex.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Requests a minute (a burst of as many is allowed, refilled evenly).
    #[serde(default = "default_rate")]
    pub rate_per_minute: u32,
    /// Jobs the tenant may have queued or running at once, counted over all its keys.
    #[serde(default = "default_active")]
    pub max_active_jobs: u32,
}

fn default_rate() -> u32 {
    DEFAULT_RATE_PER_MINUTE
}

fn default_active() -> u32 {
    DEFAULT_MAX_ACTIVE_JOBS
}

/// Why a keys file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("cannot read the keys file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the keys file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the keys file {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{0}")]
    Usage(String),
}

/// The SHA-256 of a key, in hex.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The id inside a key (`mm_<id>_<secret>` → `key_<id>`), if it is shaped as one.
fn id_of(key: &str) -> Option<String> {
    let rest = key.strip_prefix("mm_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 8 && secret.len() == 64).then(|| format!("key_{id}"))
}

impl KeyFile {
    /// Reads the file; a missing file is an empty one (no keys yet).
    pub fn load(path: &Path) -> Result<Self, KeysError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(KeysError::Read {
                path: path.into(),
                source,
            }),
        }
    }

    /// Reads a keys file's text; `origin` names where it came from in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, KeysError> {
        let invalid = |message| KeysError::Invalid {
            path: origin.into(),
            message,
        };
        let file: Self = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        file.check().map_err(invalid)?;
        Ok(file)
    }

    fn check(&self) -> Result<(), String> {
        let mut ids = std::collections::HashSet::new();
        for k in &self.keys {
            check_tenant(&k.tenant).map_err(|e| format!("key {}: {e}", k.id))?;
            if !ids.insert(&k.id) {
                return Err(format!("key {} is listed twice", k.id));
            }
            if k.sha256.len() != 64 || !k.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("key {}: sha256 must be 64 hex digits", k.id));
            }
            if k.rate_per_minute == 0 {
                return Err(format!("key {}: rate_per_minute must be at least 1", k.id));
            }
        }
        for (tenant, entry) in &self.tenants {
            check_tenant(tenant).map_err(|e| format!("tenants: {e}"))?;
            let hex = entry.webhook_secret.strip_prefix("whsec_").unwrap_or("");
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "tenant {tenant}: webhook_secret must be `whsec_` and 64 hex digits"
                ));
            }
        }
        Ok(())
    }

    /// Writes the file whole, through a temporary file renamed over it, readable by its owner
    /// only.
    pub fn save(&self, path: &Path) -> Result<(), KeysError> {
        let write = |source| KeysError::Write {
            path: path.into(),
            source,
        };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(write)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(write)?;
        let json = serde_json::to_vec_pretty(self).map_err(|e| write(e.into()))?;
        std::io::Write::write_all(&mut tmp, &json).map_err(write)?;
        tmp.as_file().sync_all().map_err(write)?;
        tmp.persist(path).map_err(|e| write(e.error))?;
        Ok(())
    }

    /// Makes a key for `tenant`, adds its entry and returns the key itself (shown once).
    pub fn add(
        &mut self,
        tenant: &str,
        rate_per_minute: u32,
        max_active_jobs: u32,
    ) -> Result<String, KeysError> {
        check_tenant(tenant).map_err(KeysError::Usage)?;
        if rate_per_minute == 0 {
            return Err(KeysError::Usage(
                "--rate-per-minute must be at least 1".into(),
            ));
        }
        let mut bytes = [0u8; 36];
        getrandom::fill(&mut bytes).map_err(|e| KeysError::Usage(e.to_string()))?;
        let (id, secret) = (hex::encode(&bytes[..4]), hex::encode(&bytes[4..]));
        let key = format!("mm_{id}_{secret}");
        // Every tenant with a key can be sent webhooks.
        self.webhook_secret(tenant, false)?;
        self.keys.push(KeyEntry {
            id: format!("key_{id}"),
            tenant: tenant.to_owned(),
            sha256: hash(&key),
            created_at: Utc::now(),
            revoked_at: None,
            rate_per_minute,
            max_active_jobs,
        });
        Ok(key)
    }

    /// Marks key `id` revoked (its requests get 403 from then on); false if it already was.
    pub fn revoke(&mut self, id: &str) -> Result<bool, KeysError> {
        let entry = self
            .keys
            .iter_mut()
            .find(|k| k.id == id)
            .ok_or_else(|| KeysError::Usage(format!("no key {id} in the keys file")))?;
        if entry.revoked_at.is_some() {
            return Ok(false);
        }
        entry.revoked_at = Some(Utc::now());
        Ok(true)
    }

    /// The tenant's webhook secret, made when it has none (or `rotate`: a new one replaces it,
    /// and webhooks are signed with it from the server's next look at the file).
    pub fn webhook_secret(&mut self, tenant: &str, rotate: bool) -> Result<String, KeysError> {
        check_tenant(tenant).map_err(KeysError::Usage)?;
        if !rotate && let Some(entry) = self.tenants.get(tenant) {
            return Ok(entry.webhook_secret.clone());
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| KeysError::Usage(e.to_string()))?;
        let secret = format!("whsec_{}", hex::encode(bytes));
        self.tenants.insert(
            tenant.to_owned(),
            TenantEntry {
                webhook_secret: secret.clone(),
            },
        );
        Ok(secret)
    }

    /// The entry a presented key belongs to, if any.
    pub fn find(&self, key: &str) -> Option<&KeyEntry> {
        let id = id_of(key)?;
        let digest = hash(key);
        self.keys.iter().find(|k| k.id == id && k.sha256 == digest)
    }
}

/// Tenant names: 1–64 characters of `a-z`, `0-9`, `-`, `_` and `.`, so that they are safe in
/// index keys, logs and URLs.
pub fn check_tenant(tenant: &str) -> Result<(), String> {
    let ok = !tenant.is_empty()
        && tenant.len() <= MAX_TENANT_CHARS
        && tenant
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tenant {tenant:?} must be 1–{MAX_TENANT_CHARS} characters of a-z, 0-9, '-', '_' and '.'"
        ))
    }
}

/// How often the running API looks at the keys file's modification time.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// The keys in force: the file, re-read when it changes (checked at most every second), or keys
/// given whole at start ([`KeyRing::fixed`], from `MINIMOTO_KEYS`). A file that becomes
/// unreadable or invalid keeps the last good keys in force, and says so in the log, so a bad edit
/// cannot open or close the API.
#[derive(Debug)]
pub struct KeyRing {
    /// The file to follow; `None` for fixed keys.
    path: Option<PathBuf>,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    file: KeyFile,
    modified: Option<Stamp>,
    checked: Instant,
}

/// What tells one version of the file from the next: `save` renames a new file in, so its inode
/// changes even when two saves fall in one tick of the modification time.
type Stamp = (SystemTime, u64, u64);

fn modified(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.ino(), m.len()))
}

impl KeyRing {
    /// Loads the file; an invalid one is an error (the API must not start on it).
    pub fn open(path: &Path) -> Result<Self, KeysError> {
        let file = KeyFile::load(path)?;
        Ok(Self {
            path: Some(path.into()),
            state: Mutex::new(Loaded {
                file,
                modified: modified(path),
                checked: Instant::now(),
            }),
        })
    }

    /// Keys given whole (the text of a keys file, from an environment variable): in force for the
    /// process's life, since nothing can change them under it.
    pub fn fixed(file: KeyFile) -> Self {
        Self {
            path: None,
            state: Mutex::new(Loaded {
                file,
                modified: None,
                checked: Instant::now(),
            }),
        }
    }

    /// Whether the file lists no key at all (revoked ones count: a server whose keys were all
    /// revoked stays closed).
    pub fn is_empty(&self) -> bool {
        self.with(|f| f.keys.is_empty())
    }

    /// How many keys are in force (not revoked).
    pub fn active(&self) -> usize {
        self.with(|f| f.keys.iter().filter(|k| k.revoked_at.is_none()).count())
    }

    /// The entry of a presented key, from the file as it is now.
    pub fn find(&self, key: &str) -> Option<KeyEntry> {
        self.with(|f| f.find(key).cloned())
    }

    /// The tenant's webhook secret, from the file as it is now.
    pub fn webhook_secret(&self, tenant: &str) -> Option<String> {
        self.with(|f| f.tenants.get(tenant).map(|t| t.webhook_secret.clone()))
    }

    fn with<T>(&self, f: impl FnOnce(&KeyFile) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(path) = &self.path
            && state.checked.elapsed() >= RELOAD_EVERY
        {
            state.checked = Instant::now();
            let now = modified(path);
            if now != state.modified {
                match KeyFile::load(path) {
                    Ok(file) => {
                        tracing::info!(path = %path.display(), keys = file.keys.len(), "keys file reloaded");
                        state.file = file;
                        state.modified = now;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "keys file unusable; the keys loaded before stay in force")
                    }
                }
            }
        }
        f(&state.file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_found_by_itself_only_and_the_file_holds_no_key() {
        let mut file = KeyFile::default();
        let key = file.add("acme", 60, 2).expect("add");
        let other = file.add("acme", 60, 2).expect("add");
        assert_ne!(key, other);
        let entry = file.find(&key).expect("found");
        assert_eq!((entry.tenant.as_str(), entry.rate_per_minute), ("acme", 60));
        let json = serde_json::to_string(&file).expect("json");
        assert!(!json.contains(&key[12..]), "the secret is not stored");
        let mut wrong = key.clone();
        wrong.pop();
        wrong.push(if key.ends_with('0') { '1' } else { '0' });
        assert!(file.find(&wrong).is_none(), "a key differing in one digit");
        assert!(file.find("").is_none() && file.find("mm_x_y").is_none());
        let secret = file.webhook_secret("acme", false).expect("secret");
        let shown = format!("{file:?}");
        assert!(
            !shown.contains(&secret[6..]) && shown.contains("whsec_<redacted>"),
            "Debug hides the webhook secret: {shown}"
        );
    }

    #[test]
    fn tenants_revocation_and_bad_files_are_checked() {
        let mut file = KeyFile::default();
        for bad in ["", "Acme", "a b", &"x".repeat(65), "a/b"] {
            assert!(file.add(bad, 60, 1).is_err(), "{bad:?}");
        }
        file.add("acme", 60, 1).expect("add");
        let id = file.keys[0].id.clone();
        assert!(file.revoke(&id).expect("revoke"));
        assert!(!file.revoke(&id).expect("again"), "revoking twice says so");
        assert!(file.revoke("key_nothere").is_err());

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys.json");
        assert_eq!(
            KeyFile::load(&path).expect("missing is empty"),
            KeyFile::default()
        );
        file.save(&path).expect("save");
        assert_eq!(KeyFile::load(&path).expect("load"), file);
        std::fs::write(&path, r#"{"keys": [{"id": "key_1", "tenant": "a"}]}"#).expect("write");
        let e = KeyFile::load(&path).expect_err("incomplete").to_string();
        assert!(e.contains("keys.json") && e.contains("sha256"), "{e}");
    }
}
