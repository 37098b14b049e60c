//! `Idempotency-Key` on `POST /v1/jobs`: a client that retries a submission (its first answer
//! was lost, the connection dropped mid-response) with the same key and the same request gets
//! the job the first one made, not a second job; the same key with another request is a 422.
//!
//! The key is claimed in the job store ([`minimoto_common::ports::JobStore::claim_key`]) once
//! the upload has been received and checked, before anything is stored, for the job id the
//! submission will use; a failed submission lets it go. The request is told apart by a
//! fingerprint of what it asks for (the effective options, and each photo's and the
//! soundtrack's name and content), not of its bytes, so a client whose multipart boundary changes
//! between tries is still recognised.

use std::{io::Read, path::Path};

use axum::http::HeaderMap;
use minimoto_common::{ErrorCode, JobId, job::Job, ports::KeyClaim};
use sha2::{Digest, Sha256};

use crate::{
    error::{ApiError, ApiResult},
    ingest::Upload,
    state::AppState,
};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Longest key accepted.
pub const MAX_KEY_CHARS: usize = 255;
/// A claim whose job has not appeared this long after its id was made belongs to a submission
/// that died (a crash between the claim and the job's record): a retry takes the key over.
/// Storing a 2 GB upload takes well under it.
pub const STALE_CLAIM: std::time::Duration = std::time::Duration::from_secs(600);

/// The request's key, checked before its body is read: 1–255 visible ASCII characters.
pub fn key_of(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().ok().map(str::trim).unwrap_or("");
    let visible = key.bytes().all(|b| b.is_ascii_graphic());
    if key.is_empty() || key.len() > MAX_KEY_CHARS || !visible {
        return Err(ApiError::new(
            ErrorCode::BadIdempotencyKey,
            format!(
                "Idempotency-Key must be 1–{MAX_KEY_CHARS} visible ASCII characters (a UUID is a good key)"
            ),
        ));
    }
    Ok(Some(key.to_owned()))
}

/// What the upload asks for, as a SHA-256 in hex.
pub async fn fingerprint(upload: &Upload) -> ApiResult<String> {
    let options = serde_json::to_string(&upload.options).map_err(ApiError::internal)?;
    let files: Vec<(Option<String>, std::path::PathBuf)> = upload
        .images
        .iter()
        .map(|i| (i.file_name.clone(), i.path.clone()))
        .chain(
            upload
                .audio
                .iter()
                .map(|a| (a.file_name.clone().or(Some("audio".into())), a.path.clone())),
        )
        .collect();
    let has_audio = upload.audio.is_some();
    tokio::task::spawn_blocking(move || {
        let mut all = Sha256::new();
        all.update(options.as_bytes());
        all.update([u8::from(has_audio)]);
        for (name, path) in &files {
            all.update(b"\0part\0");
            all.update(name.as_deref().unwrap_or("").as_bytes());
            all.update(b"\0");
            all.update(file_digest(path)?);
        }
        Ok::<_, std::io::Error>(hex::encode(all.finalize()))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::staging)
}

fn file_digest(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
    }
}

/// What a keyed submission goes on with.
#[derive(Debug)]
pub enum Begin {
    /// The key is this submission's: make the job with this id.
    New(JobId),
    /// The key made this job before: answer with it.
    Replay(Box<Job>),
}

/// Claims `key` of `tenant` for a new job, or finds the job it made.
pub async fn begin(
    state: &AppState,
    tenant: &str,
    key: &str,
    fingerprint: String,
) -> ApiResult<Begin> {
    let claim = KeyClaim {
        job: JobId::new(),
        fingerprint,
    };
    let in_progress = || {
        ApiError::new(
            ErrorCode::IdempotencyInProgress,
            "a request with this Idempotency-Key is still being submitted; try again shortly",
        )
        .retry_after(1)
    };
    for _ in 0..3 {
        let held = match state.jobs.claim_key(tenant, key, &claim).await {
            Ok(None) => return Ok(Begin::New(claim.job)),
            Ok(Some(held)) => held,
            Err(minimoto_common::Error::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        if held.fingerprint != claim.fingerprint {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                format!(
                    "this Idempotency-Key was used for another request (job {}): use a new key for a new job",
                    held.job
                ),
            ));
        }
        // A job whose record expired is gone: its key is taken over as a dead submission's.
        let now = chrono::Utc::now();
        match state
            .jobs
            .get(held.job)
            .await?
            .filter(|j| !j.record_expired(now))
        {
            Some(job) => return Ok(Begin::Replay(Box::new(job))),
            None if held.job.age() < STALE_CLAIM => return Err(in_progress()),
            None => {
                if state.jobs.replace_key(tenant, key, &held, &claim).await? {
                    tracing::info!(old_job = %held.job, job_id = %claim.job, "took over the Idempotency-Key of a submission that died");
                    return Ok(Begin::New(claim.job));
                }
            }
        }
    }
    Err(in_progress())
}
