//! [`BlobStore`] on Amazon S3 (or an S3 emulator such as moto or LocalStack).
//!
//! Files stream between disk and S3 without being held in memory. Small files go up in one
//! `PutObject`; large ones as a multipart upload that is aborted on any failure (and, as a
//! backstop, expired by the bucket's lifecycle rule), so no invisible, billed parts pile up.
//! Downloads land in a temporary file that is renamed into place only when complete. Download
//! URLs are presigned GETs served by S3 itself, Range requests included.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::{
    Client,
    operation::{get_object::GetObjectError, head_object::HeadObjectError},
    presigning::PresigningConfig,
    primitives::{ByteStream, Length},
    types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier},
};
use chrono::{DateTime, Utc};
use tokio::{io::AsyncWriteExt, task::JoinSet};

use crate::sdk_error;
use minimoto_common::{
    error::{Error, Result},
    ports::{BlobStore, SignedUrl},
};

/// The backend name in [`Error::Backend`].
const S3: &str = "s3";
/// Files of this size and more go up as multipart uploads, in parts of this size (or more for
/// files too big for `MAX_PARTS` of it): few requests, yet a failed part is cheap to resend.
pub const PART_SIZE: u64 = 16 * 1024 * 1024;
/// S3's limit on the parts of one upload.
const MAX_PARTS: u64 = 10_000;
/// S3's limit on the size of one object (5 TiB).
const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;
/// Parts uploaded at once: enough to fill a link, few enough to stay light on a small worker.
const PARTS_IN_FLIGHT: usize = 4;
/// S3's limit on the keys of one `DeleteObjects`.
const DELETE_BATCH: usize = 1000;
/// S3's limit on the lifetime of a presigned URL (SigV4).
const MAX_URL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Objects in one S3 bucket. Cheap to clone (the SDK client is shared).
#[derive(Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

impl fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

impl S3BlobStore {
    pub fn new(config: &SdkConfig, bucket: impl Into<String>) -> Self {
        Self {
            client: s3_client(config),
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn put_single(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
        size: u64,
    ) -> Result<()> {
        let body = file_part(path, 0, size).await?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(to_i64(size)?)
            .body(body)
            .send()
            .await
            .map_err(|e| sdk_error(S3, &format!("put {key}"), e))?;
        Ok(())
    }

    async fn put_multipart(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
        size: u64,
    ) -> Result<()> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| sdk_error(S3, &format!("start multipart upload of {key}"), e))?;
        let upload_id = created.upload_id().ok_or_else(|| {
            Error::backend(S3, format!("multipart upload of {key}: no upload id"))
        })?;
        let upload = Arc::new(Multipart {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            path: path.to_owned(),
        });
        tracing::debug!(key, size, upload_id, "multipart upload started");
        // Should this future be dropped half-way (a cancelled request, a shutdown), the guard
        // still aborts the upload.
        let guard = AbortOnDrop(Some(upload.clone()));
        match upload_and_complete(&upload, size).await {
            Ok(()) => {
                guard.disarm();
                Ok(())
            }
            Err(e) => {
                guard.disarm();
                upload.abort().await;
                Err(e)
            }
        }
    }
}

/// An S3 client for `config`: path-style addressing when an endpoint is configured, because
/// emulators (moto, LocalStack) are reached by address, not by bucket subdomains.
pub fn s3_client(config: &SdkConfig) -> Client {
    let conf = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    Client::from_conf(conf)
}

/// S3 takes any UTF-8 key of 1–1024 bytes; an empty one would address the bucket itself.
fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 1024 {
        return Err(Error::Invalid(format!(
            "`{key}` is not a valid S3 key (1–1024 bytes)"
        )));
    }
    Ok(())
}

fn to_i64(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::Invalid(format!("{n} bytes is too large")))
}

/// `len` bytes of the file from `offset`, read as the request is sent (and again on a retry).
async fn file_part(path: &Path, offset: u64, len: u64) -> Result<ByteStream> {
    ByteStream::read_from()
        .path(path)
        .offset(offset)
        .length(Length::Exact(len))
        .build()
        .await
        .map_err(|e| {
            Error::backend(
                "filesystem",
                format!("read {len} bytes at {offset} of {}: {e}", path.display()),
            )
        })
}

/// The part size for a file of `size` bytes: [`PART_SIZE`], or bigger (in whole MiB) when the
/// file would need more than [`MAX_PARTS`] parts.
fn part_size(size: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    PART_SIZE.max(size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB)
}

/// One multipart upload in progress.
#[derive(Debug)]
struct Multipart {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    path: PathBuf,
}

impl Multipart {
    async fn upload_part(&self, number: i32, offset: u64, len: u64) -> Result<CompletedPart> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .content_length(to_i64(len)?)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(file_part(&self.path, offset, len).await?)
            .send()
            .await
            .map_err(|e| sdk_error(S3, &format!("upload part {number} of {}", self.key), e))?;
        let e_tag = out
            .e_tag()
            .ok_or_else(|| Error::backend(S3, format!("part {number} of {}: no ETag", self.key)))?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .e_tag(e_tag)
            .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
            .build())
    }

    /// Aborts the upload so S3 drops its parts. A failure is only logged: the caller is already
    /// reporting the error that led here, and the bucket's lifecycle rule is the backstop.
    async fn abort(&self) {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        match aborted {
            Ok(_) => tracing::debug!(key = self.key, "multipart upload aborted"),
            Err(e) => tracing::warn!(
                key = self.key,
                upload_id = self.upload_id,
                error = %aws_sdk_s3::error::DisplayErrorContext(&e),
                "could not abort a failed multipart upload; the bucket lifecycle rule will"
            ),
        }
    }
}

/// Aborts the upload from a spawned task if dropped armed, i.e. if the upload future was
/// cancelled before it could finish or abort by itself.
struct AbortOnDrop(Option<Arc<Multipart>>);

impl AbortOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(upload) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { upload.abort().await });
        }
    }
}

/// Uploads the parts, [`PARTS_IN_FLIGHT`] at a time, then completes the upload. On failure no
/// part upload is left running, so an abort that follows leaves nothing behind.
async fn upload_and_complete(upload: &Arc<Multipart>, size: u64) -> Result<()> {
    let part_size = part_size(size);
    let count = size.div_ceil(part_size);
    let mut tasks = JoinSet::new();
    let uploaded = async {
        let mut parts = Vec::new();
        for index in 0..count {
            if tasks.len() >= PARTS_IN_FLIGHT {
                parts.push(joined(tasks.join_next().await)?);
            }
            let number = i32::try_from(index + 1)
                .map_err(|_| Error::Invalid(format!("{count} parts is too many")))?;
            let offset = index * part_size;
            let len = part_size.min(size - offset);
            let upload = upload.clone();
            tasks.spawn(async move { upload.upload_part(number, offset, len).await });
        }
        while let Some(done) = tasks.join_next().await {
            parts.push(joined(Some(done))?);
        }
        Ok::<_, Error>(parts)
    }
    .await;
    let mut parts = match uploaded {
        Ok(parts) => parts,
        Err(e) => {
            tasks.shutdown().await;
            return Err(e);
        }
    };
    parts.sort_by_key(|p| p.part_number());
    upload
        .client
        .complete_multipart_upload()
        .bucket(&upload.bucket)
        .key(&upload.key)
        .upload_id(&upload.upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(|e| {
            sdk_error(
                S3,
                &format!("complete multipart upload of {}", upload.key),
                e,
            )
        })?;
    Ok(())
}

fn joined(
    done: Option<std::result::Result<Result<CompletedPart>, tokio::task::JoinError>>,
) -> Result<CompletedPart> {
    match done {
        Some(Ok(part)) => part,
        Some(Err(e)) => Err(Error::backend(S3, format!("part upload task failed: {e}"))),
        None => Err(Error::backend(S3, "part upload task missing")),
    }
}

/// A temporary name next to `path`, so the final rename stays on one file system.
fn temp_sibling(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{} is not a file path", path.display())))?;
    Ok(path.with_file_name(format!(
        ".{}.part-{}",
        name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    )))
}

/// Streams `body` into a new file at `path`; checks the length S3 announced.
async fn write_body(
    key: &str,
    mut body: ByteStream,
    path: &Path,
    expected: Option<u64>,
) -> Result<u64> {
    let mut file = tokio::fs::File::create(path).await?;
    let mut written = 0u64;
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| Error::backend(S3, format!("download {key}: {e}")))?
    {
        file.write_all(&chunk).await?;
        written += chunk.len() as u64;
    }
    file.flush().await?;
    if let Some(expected) = expected
        && expected != written
    {
        return Err(Error::backend(
            S3,
            format!("download {key}: got {written} of {expected} bytes"),
        ));
    }
    Ok(written)
}

#[async_trait]
impl BlobStore for S3BlobStore {
    /// One `PutObject` below [`PART_SIZE`], a multipart upload from there on.
    async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> Result<u64> {
        check_key(key)?;
        let meta = tokio::fs::metadata(path).await?;
        if !meta.is_file() {
            return Err(Error::Invalid(format!("{} is not a file", path.display())));
        }
        let size = meta.len();
        if size > MAX_OBJECT_SIZE {
            return Err(Error::Invalid(format!(
                "{} is {size} bytes, more than S3 takes in one object",
                path.display()
            )));
        }
        if size < PART_SIZE {
            self.put_single(key, path, content_type, size).await?;
        } else {
            self.put_multipart(key, path, content_type, size).await?;
        }
        Ok(size)
    }

    /// Downloads to a temporary sibling of `path` and renames it into place once complete, so a
    /// failed download never leaves a partial file under the final name.
    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
        check_key(key)?;
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(GetObjectError::is_no_such_key) =>
            {
                return Err(Error::NotFound(format!("blob {key}")));
            }
            Err(e) => return Err(sdk_error(S3, &format!("get {key}"), e)),
        };
        let expected = out.content_length().and_then(|n| u64::try_from(n).ok());
        let tmp = temp_sibling(path)?;
        let written = match write_body(key, out.body, &tmp, expected).await {
            Ok(n) => tokio::fs::rename(&tmp, path)
                .await
                .map(|()| n)
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        if written.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written
    }

    async fn size(&self, key: &str) -> Result<Option<u64>> {
        check_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| Error::backend(S3, format!("head {key}: no content length"))),
            Err(e)
                if e.as_service_error()
                    .is_some_and(HeadObjectError::is_not_found) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error(S3, &format!("head {key}"), e)),
        }
    }

    /// Refuses an empty prefix: it would empty the whole bucket.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        if prefix.is_empty() {
            return Err(Error::Invalid(
                "refusing to delete with an empty prefix (it would empty the bucket)".into(),
            ));
        }
        delete_listed(&self.client, &self.bucket, Some(prefix)).await
    }

    /// `ListObjectsV2` with a `/` delimiter: the common prefixes are the folders. `StartAfter`
    /// takes a key: `<prefix>a/~` sorts after every key inside folder `a` (`~` comes after every
    /// character a key may hold) and before the next folder.
    async fn folders(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .delimiter("/")
            .set_start_after(start_after.map(|a| format!("{prefix}{a}/~")))
            .into_paginator()
            .send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error(S3, &format!("list {prefix}"), e))?;
            names.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix())
                    .filter_map(|p| p.strip_prefix(prefix)?.strip_suffix('/'))
                    .map(str::to_owned),
            );
            if names.len() >= limit {
                break;
            }
        }
        names.truncate(limit);
        Ok(names)
    }

    async fn remove_debris(&self, _older_than: Duration) -> Result<u64> {
        // A PUT is atomic; an incomplete multipart upload is aborted by the bucket's lifecycle rule.
        Ok(0)
    }

    /// A presigned GET. The ttl is cut to whole seconds (what SigV4 signs) and must be 1 s to 7
    /// days. The URL is signed with the credentials in use: temporary ones (an instance role, SSO)
    /// stop it working when they expire, which can be before `expires_at`.
    async fn url(&self, key: &str, ttl: Duration) -> Result<SignedUrl> {
        check_key(key)?;
        let ttl = Duration::from_secs(ttl.as_secs());
        if ttl.is_zero() || ttl > MAX_URL_TTL {
            return Err(Error::Invalid(format!(
                "a presigned URL lives 1 s to 7 days, not {} s",
                ttl.as_secs()
            )));
        }
        // Whole seconds, as in X-Amz-Date, so `expires_at` is exactly when S3 stops honouring it.
        let since_epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|e| Error::backend("clock", e))?;
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs());
        let presigning = PresigningConfig::builder()
            .start_time(start)
            .expires_in(ttl)
            .build()
            .map_err(|e| Error::Invalid(format!("presigned URL: {e}")))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .map_err(|e| sdk_error(S3, &format!("presign {key}"), e))?;
        let ttl = chrono::Duration::from_std(ttl).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(SignedUrl {
            url: request.uri().to_owned(),
            expires_at: DateTime::<Utc>::from(start) + ttl,
        })
    }

    async fn ready(&self) -> Result<()> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| sdk_error(S3, &format!("check bucket {}", self.bucket), e))?;
        Ok(())
    }
}

/// Deletes the objects listed under `prefix` (all of them without one), a page at a time.
/// Returns how many. Keys are deleted behind the listing's cursor, which S3 allows.
pub async fn delete_listed(client: &Client, bucket: &str, prefix: Option<&str>) -> Result<u64> {
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .set_prefix(prefix.map(str::to_owned))
        .into_paginator()
        .send();
    let mut deleted = 0;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            sdk_error(
                S3,
                &format!("list {bucket}/{}", prefix.unwrap_or_default()),
                e,
            )
        })?;
        let ids = page
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::backend(S3, e))?;
        deleted += delete_objects(client, bucket, ids).await?;
    }
    Ok(deleted)
}

/// `DeleteObjects` in batches of `DELETE_BATCH`; any key S3 could not delete fails the call.
pub async fn delete_objects(
    client: &Client,
    bucket: &str,
    ids: Vec<ObjectIdentifier>,
) -> Result<u64> {
    let mut deleted = 0;
    for batch in ids.chunks(DELETE_BATCH) {
        let delete = Delete::builder()
            .set_objects(Some(batch.to_vec()))
            .quiet(true)
            .build()
            .map_err(|e| Error::backend(S3, e))?;
        let out = client
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| sdk_error(S3, &format!("delete objects in {bucket}"), e))?;
        if let Some(first) = out.errors().first() {
            return Err(Error::backend(
                S3,
                format!(
                    "could not delete {} of {} objects in {bucket}, first {}: {} {}",
                    out.errors().len(),
                    batch.len(),
                    first.key().unwrap_or_default(),
                    first.code().unwrap_or_default(),
                    first.message().unwrap_or_default()
                ),
            ));
        }
        deleted += batch.len() as u64;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_stay_within_s3_limits() {
        const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
        assert_eq!(part_size(PART_SIZE), PART_SIZE);
        assert_eq!(part_size(MAX_PARTS * PART_SIZE), PART_SIZE);
        for size in [MAX_PARTS * PART_SIZE + 1, MAX_OBJECT_SIZE] {
            let part = part_size(size);
            assert!(size.div_ceil(part) <= MAX_PARTS, "{size}: too many parts");
            assert!(part <= MAX_PART_SIZE, "{size}: parts of {part} are too big");
        }
    }

    #[test]
    fn keys_must_be_1_to_1024_bytes() {
        assert!(check_key("").is_err());
        assert!(check_key(&"k".repeat(1025)).is_err());
        assert!(check_key("jobs/0191/outputs/video.mp4").is_ok());
    }
}
