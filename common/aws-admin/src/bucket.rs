//! The S3 bucket: created in the configured region, tagged with its stack, with minimoto's
//! lifecycle rules (abort abandoned multipart uploads; expire uploaded photos) and a CORS rule
//! for browser downloads; emptied and deleted by `cleanup`.
//!
//! The bucket's lifecycle and CORS configurations are each one document shared with whoever
//! else owns rules on the bucket: minimoto manages its own rules by id and keeps the others as
//! they are.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_s3::{
    Client,
    error::ProvideErrorMetadata,
    operation::{create_bucket::CreateBucketError, head_bucket::HeadBucketError},
    types::{
        AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint,
        CorsConfiguration, CorsRule, CreateBucketConfiguration, ExpirationStatus,
        LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, ObjectIdentifier, Tag, Tagging,
    },
};
use minimoto_aws::{
    blob::{delete_listed, delete_objects, s3_client as client},
    sdk_error,
};
use minimoto_common::{
    error::{Error, Result},
    layout::{INPUTS, OUTPUTS},
};

use crate::{Action, Found, Kind, missing_tags};

const S3: &str = "s3";
/// The id of the lifecycle rule aborting multipart uploads left incomplete for a day (the
/// backstop behind the adapter's own abort on failure).
pub const ABORT_UPLOADS_RULE_ID: &str = "minimoto-abort-incomplete-multipart-uploads";
/// The id of the lifecycle rule expiring uploaded photos (under [`INPUTS`]).
pub const EXPIRE_INPUTS_RULE_ID: &str = "minimoto-expire-inputs";
/// The id of the lifecycle rule expiring rendered outputs (under [`OUTPUTS`]), by retention.
pub const EXPIRE_OUTPUTS_RULE_ID: &str = "minimoto-expire-outputs";
/// Every rule id minimoto owns: a rule of these ids that the options no longer ask for is removed.
const OUR_RULE_IDS: [&str; 3] = [
    ABORT_UPLOADS_RULE_ID,
    EXPIRE_INPUTS_RULE_ID,
    EXPIRE_OUTPUTS_RULE_ID,
];
/// The id of the CORS rule letting browsers download outputs through presigned URLs.
pub const CORS_RULE_ID: &str = "minimoto-downloads";
/// Response headers a browser script may read: sizes and ranges for players, the ETag for caches.
const CORS_EXPOSE_HEADERS: [&str; 4] = ["Content-Length", "Content-Range", "Accept-Ranges", "ETag"];
/// How long browsers may cache the CORS preflight answer.
const CORS_MAX_AGE_SECS: i32 = 3600;

/// What setup configures on the bucket beyond its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketOptions {
    /// Days after upload S3 deletes a photo (the lifecycle rule on [`INPUTS`]): jobs keep their
    /// outputs, not their inputs. 1–3650.
    pub input_retention_days: u32,
    /// Days after it is written S3 deletes an output (the lifecycle rule on [`OUTPUTS`]): the
    /// API's retention (`--retention-days`), which dates the job's `expires_at` the same way.
    /// 0 keeps outputs until deleted; at most 3650.
    pub output_retention_days: u32,
    /// Origins browsers may download from (`GET`/`HEAD`); `*` for any.
    pub cors_origins: Vec<String>,
}

impl Default for BucketOptions {
    fn default() -> Self {
        Self {
            input_retention_days: 7,
            output_retention_days: 30,
            cors_origins: vec!["*".into()],
        }
    }
}

impl BucketOptions {
    /// Checks the options before any call.
    pub fn validate(&self) -> Result<()> {
        if !(1..=3650).contains(&self.input_retention_days) {
            return Err(Error::Invalid(format!(
                "input retention of {} days: must be 1–3650",
                self.input_retention_days
            )));
        }
        if self.output_retention_days > 3650 {
            return Err(Error::Invalid(format!(
                "output retention of {} days: must be 0 (kept until deleted) to 3650",
                self.output_retention_days
            )));
        }
        if self.cors_origins.is_empty() {
            return Err(Error::Invalid(
                "CORS: name at least one origin (or `*`)".into(),
            ));
        }
        for origin in &self.cors_origins {
            let ok = origin == "*"
                || ((origin.starts_with("https://") || origin.starts_with("http://"))
                    && !origin.ends_with('/')
                    && origin.matches('*').count() <= 1);
            if !ok {
                return Err(Error::Invalid(format!(
                    "CORS origin `{origin}`: use `*` or a scheme and host such as \
                     `https://app.example.com` (no path, at most one `*`)"
                )));
            }
        }
        Ok(())
    }
}

/// Whether the bucket exists and we can use it; a bucket of another account is an error.
async fn bucket_exists(client: &Client, bucket: &str) -> Result<bool> {
    match client.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(HeadBucketError::is_not_found) =>
        {
            Ok(false)
        }
        Err(e) => Err(sdk_error(S3, &format!("check bucket {bucket}"), e)),
    }
}

/// Creates the bucket (in the configured region) unless it exists, then brings its tags,
/// lifecycle rules and CORS rule in line. A bucket of another account, or one tagged with
/// another stack, is a `Conflict`.
///
/// Asks first because in us-east-1 S3 answers a repeated `CreateBucket` of one's own bucket with
/// success, not `BucketAlreadyOwnedByYou`.
pub async fn ensure_bucket(
    config: &SdkConfig,
    bucket: &str,
    stack: &str,
    options: &BucketOptions,
) -> Result<Action> {
    options.validate()?;
    let client = client(config);
    let created = !bucket_exists(&client, bucket).await? && create(config, &client, bucket).await?;
    let mut updated = Vec::new();
    // Tags first: a bucket of another stack must be refused before anything is changed on it.
    if ensure_tags(&client, bucket, stack).await? {
        updated.push("tags".to_owned());
    }
    if ensure_lifecycle_rules(&client, bucket, options).await? {
        updated.push("lifecycle rules".to_owned());
    }
    if ensure_cors_rule(&client, bucket, &options.cors_origins).await? {
        updated.push("CORS rule".to_owned());
    }
    Ok(if created {
        Action::Created
    } else if updated.is_empty() {
        Action::Unchanged
    } else {
        Action::Updated(updated)
    })
}

/// `CreateBucket`; false if it turned out to exist already (ours).
async fn create(config: &SdkConfig, client: &Client, bucket: &str) -> Result<bool> {
    let mut request = client.create_bucket().bucket(bucket);
    // us-east-1 is the default location and refuses to be named as a constraint.
    if let Some(region) = config
        .region()
        .map(|r| r.as_ref())
        .filter(|r| *r != "us-east-1")
    {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(CreateBucketError::is_bucket_already_owned_by_you) =>
        {
            Ok(false)
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(CreateBucketError::is_bucket_already_exists) =>
        {
            Err(Error::Conflict(format!(
                "S3 bucket `{bucket}` belongs to another account (names are global): pick another"
            )))
        }
        Err(e) => Err(sdk_error(S3, &format!("create bucket {bucket}"), e)),
    }
}

/// The bucket's tags; none if it has no tag set.
async fn bucket_tags(client: &Client, bucket: &str) -> Result<HashMap<String, String>> {
    match client.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => Ok(out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect()),
        Err(e) if e.code() == Some("NoSuchTagSet") => Ok(HashMap::new()),
        Err(e) => Err(sdk_error(
            S3,
            &format!("read the tags of bucket {bucket}"),
            e,
        )),
    }
}

/// Adds the stack's tags, keeping the others (`PutBucketTagging` replaces the whole set); true
/// if it changed them.
async fn ensure_tags(client: &Client, bucket: &str, stack: &str) -> Result<bool> {
    let mut tags = bucket_tags(client, bucket).await?;
    let missing = missing_tags(Kind::Bucket, bucket, stack, &tags)?;
    if missing.is_empty() {
        return Ok(false);
    }
    tags.extend(missing.into_iter().map(|(k, v)| (k.to_owned(), v)));
    let mut sorted: Vec<_> = tags.into_iter().collect();
    sorted.sort();
    let set = sorted
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::backend(S3, e))?;
    let tagging = Tagging::builder()
        .set_tag_set(Some(set))
        .build()
        .map_err(|e| Error::backend(S3, e))?;
    client
        .put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send()
        .await
        .map_err(|e| sdk_error(S3, &format!("tag bucket {bucket}"), e))?;
    Ok(true)
}

/// minimoto's lifecycle rules: abort multipart uploads left incomplete for a day (whole bucket),
/// expire photos `input_retention_days` after upload, and outputs `output_retention_days` after
/// they were written (unless 0).
fn lifecycle_rules(options: &BucketOptions) -> Result<Vec<LifecycleRule>> {
    let days =
        |n: u32| i32::try_from(n).map_err(|_| Error::Invalid(format!("{n} days is too many")));
    let abort = LifecycleRule::builder()
        .id(ABORT_UPLOADS_RULE_ID)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .status(ExpirationStatus::Enabled)
        .abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(1)
                .build(),
        )
        .build();
    let expire = |id: &str, prefix: &str, after: i32| {
        LifecycleRule::builder()
            .id(id)
            .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
            .status(ExpirationStatus::Enabled)
            .expiration(LifecycleExpiration::builder().days(after).build())
            .build()
    };
    let mut rules = vec![
        abort,
        expire(
            EXPIRE_INPUTS_RULE_ID,
            INPUTS,
            days(options.input_retention_days)?,
        ),
    ];
    if options.output_retention_days > 0 {
        rules.push(expire(
            EXPIRE_OUTPUTS_RULE_ID,
            OUTPUTS,
            days(options.output_retention_days)?,
        ));
    }
    rules
        .into_iter()
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::backend(S3, e))
}

/// What a lifecycle rule does, as far as minimoto's rules use it: compared instead of the whole
/// rule, because S3 may answer with fields normalised differently from how they were sent.
#[allow(
    deprecated,
    reason = "a rule edited by hand may carry the legacy top-level prefix, which still applies"
)]
fn rule_meaning(rule: &LifecycleRule) -> impl PartialEq + use<'_> {
    let filter = rule.filter();
    let prefix = filter
        .and_then(|f| f.prefix())
        .or(rule.prefix())
        .unwrap_or("");
    let filtered_otherwise = filter.is_some_and(|f| {
        f.tag().is_some()
            || f.and().is_some()
            || f.object_size_greater_than().is_some()
            || f.object_size_less_than().is_some()
    });
    let expiration = rule.expiration().map(|e| {
        (
            e.days(),
            e.date().is_some(),
            e.expired_object_delete_marker() == Some(true),
        )
    });
    (
        rule.id(),
        rule.status().clone(),
        prefix,
        filtered_otherwise,
        expiration,
        rule.abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation()),
        rule.transitions().len(),
        rule.noncurrent_version_transitions().len(),
        rule.noncurrent_version_expiration().is_some(),
    )
}

/// Puts minimoto's lifecycle rules on the bucket, replacing older versions of them (by id) and
/// keeping every other rule as it is; true if it changed the configuration.
async fn ensure_lifecycle_rules(
    client: &Client,
    bucket: &str,
    options: &BucketOptions,
) -> Result<bool> {
    let ours = lifecycle_rules(options)?;
    let (current, min_size) = match client
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => {
            let min_size = out.transition_default_minimum_object_size().cloned();
            (out.rules.unwrap_or_default(), min_size)
        }
        Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => (Vec::new(), None),
        Err(e) => {
            return Err(sdk_error(
                S3,
                &format!("read the lifecycle rules of bucket {bucket}"),
                e,
            ));
        }
    };
    let is_ours = |r: &LifecycleRule| r.id().is_some_and(|id| OUR_RULE_IDS.contains(&id));
    let (mine, mut rules): (Vec<_>, Vec<_>) = current.into_iter().partition(|r| is_ours(r));
    let same = mine.len() == ours.len()
        && ours
            .iter()
            .all(|o| mine.iter().any(|m| rule_meaning(m) == rule_meaning(o)));
    if same {
        return Ok(false);
    }
    if !rules.is_empty() {
        tracing::info!(
            bucket,
            kept = rules.len(),
            "the bucket has lifecycle rules of its own; keeping them beside minimoto's"
        );
    }
    rules.extend(ours);
    let configuration = BucketLifecycleConfiguration::builder()
        .set_rules(Some(rules))
        .build()
        .map_err(|e| Error::backend(S3, e))?;
    client
        .put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(configuration)
        .set_transition_default_minimum_object_size(min_size)
        .send()
        .await
        .map_err(|e| {
            sdk_error(
                S3,
                &format!("set the lifecycle rules of bucket {bucket}"),
                e,
            )
        })?;
    Ok(true)
}

/// minimoto's CORS rule: `GET`/`HEAD` from `origins`, the download headers exposed.
fn cors_rule(origins: &[String]) -> Result<CorsRule> {
    let mut rule = CorsRule::builder()
        .id(CORS_RULE_ID)
        .allowed_methods("GET")
        .allowed_methods("HEAD")
        // Players send `Range`; listing headers beats `*`, which S3 also accepts.
        .allowed_headers("Range")
        .max_age_seconds(CORS_MAX_AGE_SECS);
    for origin in origins {
        rule = rule.allowed_origins(origin);
    }
    for header in CORS_EXPOSE_HEADERS {
        rule = rule.expose_headers(header);
    }
    rule.build().map_err(|e| Error::backend(S3, e))
}

/// A CORS rule as sets, compared instead of the rule: order and case of methods and headers do
/// not matter to S3.
fn cors_meaning(rule: &CorsRule) -> impl PartialEq + use<> {
    let set = |items: &[String], lower: bool| {
        let mut v: Vec<String> = items
            .iter()
            .map(|s| {
                if lower {
                    s.to_ascii_lowercase()
                } else {
                    s.clone()
                }
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    (
        rule.id().map(str::to_owned),
        set(rule.allowed_methods(), true),
        set(rule.allowed_origins(), false),
        set(rule.allowed_headers(), true),
        set(rule.expose_headers(), true),
        rule.max_age_seconds(),
    )
}

/// Puts minimoto's CORS rule on the bucket, replacing an older version of it (by id) and keeping
/// every other rule; true if it changed the configuration.
async fn ensure_cors_rule(client: &Client, bucket: &str, origins: &[String]) -> Result<bool> {
    let ours = cors_rule(origins)?;
    let current = match client.get_bucket_cors().bucket(bucket).send().await {
        Ok(out) => out.cors_rules.unwrap_or_default(),
        Err(e) if e.code() == Some("NoSuchCORSConfiguration") => Vec::new(),
        Err(e) => {
            return Err(sdk_error(
                S3,
                &format!("read the CORS rules of bucket {bucket}"),
                e,
            ));
        }
    };
    let (mine, mut rules): (Vec<_>, Vec<_>) = current
        .into_iter()
        .partition(|r| r.id() == Some(CORS_RULE_ID));
    if let [only] = mine.as_slice()
        && cors_meaning(only) == cors_meaning(&ours)
    {
        return Ok(false);
    }
    rules.push(ours);
    let configuration = CorsConfiguration::builder()
        .set_cors_rules(Some(rules))
        .build()
        .map_err(|e| Error::backend(S3, e))?;
    client
        .put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(configuration)
        .send()
        .await
        .map_err(|e| sdk_error(S3, &format!("set the CORS rules of bucket {bucket}"), e))?;
    Ok(true)
}

/// The buckets in the configured region, with their tags (for `cleanup`). Buckets that vanish
/// or whose tags we may not read while listing are skipped: they cannot be the stack's.
pub async fn find_buckets(config: &SdkConfig) -> Result<Vec<Found>> {
    let client = client(config);
    let region = config.region().map(|r| r.as_ref().to_owned());
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_buckets()
            .set_bucket_region(region.clone())
            .max_buckets(1000)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| sdk_error(S3, "list buckets", e))?;
        for name in page.buckets().iter().filter_map(|b| b.name()) {
            let tags = match client.get_bucket_tagging().bucket(name).send().await {
                Ok(out) => out
                    .tag_set()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned()))
                    .collect(),
                Err(e) if e.code() == Some("NoSuchTagSet") => HashMap::new(),
                // Deleted meanwhile, locked to us by its bucket policy, or (without a region
                // filter) elsewhere: none of these is a bucket this stack's cleanup can delete.
                Err(e)
                    if matches!(
                        e.code(),
                        Some("NoSuchBucket" | "AccessDenied" | "PermanentRedirect")
                    ) =>
                {
                    tracing::debug!(bucket = name, code = e.code(), "skipping a bucket");
                    continue;
                }
                Err(e) => return Err(sdk_error(S3, &format!("read the tags of bucket {name}"), e)),
            };
            found.push(Found {
                kind: Kind::Bucket,
                name: name.to_owned(),
                id: name.to_owned(),
                tags,
            });
        }
        match page.continuation_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => return Ok(found),
        }
    }
}

/// Empties the bucket (objects, old versions and delete markers, multipart uploads in progress)
/// and deletes it; false if it did not exist.
pub async fn delete_bucket(config: &SdkConfig, bucket: &str) -> Result<bool> {
    let client = client(config);
    if !bucket_exists(&client, bucket).await? {
        return Ok(false);
    }
    let aborted = abort_uploads(&client, bucket).await?;
    let deleted = delete_listed(&client, bucket, None).await?;
    let versions = delete_versions(&client, bucket).await?;
    tracing::info!(bucket, deleted, versions, aborted, "bucket emptied");
    match client.delete_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("NoSuchBucket") => Ok(false),
        Err(e) => Err(sdk_error(S3, &format!("delete bucket {bucket}"), e)),
    }
}

/// Aborts every multipart upload in progress in the bucket; returns how many.
async fn abort_uploads(client: &Client, bucket: &str) -> Result<u64> {
    let mut aborted = 0;
    let (mut key_marker, mut upload_id_marker) = (None, None);
    loop {
        let page = client
            .list_multipart_uploads()
            .bucket(bucket)
            .set_key_marker(key_marker.take())
            .set_upload_id_marker(upload_id_marker.take())
            .send()
            .await
            .map_err(|e| sdk_error(S3, &format!("list multipart uploads in {bucket}"), e))?;
        for upload in page.uploads() {
            let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                continue;
            };
            client
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(id)
                .send()
                .await
                .map_err(|e| sdk_error(S3, &format!("abort multipart upload of {key}"), e))?;
            aborted += 1;
        }
        if page.is_truncated() != Some(true) {
            return Ok(aborted);
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        upload_id_marker = page.next_upload_id_marker().map(str::to_owned);
        if key_marker.is_none() && upload_id_marker.is_none() {
            return Ok(aborted);
        }
    }
}

/// Deletes every object version and delete marker, which a versioned bucket keeps after its
/// objects are deleted and which stop the bucket from being deleted. Returns how many.
async fn delete_versions(client: &Client, bucket: &str) -> Result<u64> {
    let mut deleted = 0;
    let (mut key_marker, mut version_id_marker) = (None, None);
    loop {
        let page = client
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_id_marker.take())
            .send()
            .await
            .map_err(|e| sdk_error(S3, &format!("list object versions in {bucket}"), e))?;
        let versions = page.versions().iter().map(|v| (v.key(), v.version_id()));
        let markers = page
            .delete_markers()
            .iter()
            .map(|m| (m.key(), m.version_id()));
        let ids = versions
            .chain(markers)
            .filter_map(|(key, version)| Some((key?, version)))
            .map(|(key, version)| {
                ObjectIdentifier::builder()
                    .key(key)
                    .set_version_id(version.map(str::to_owned))
                    .build()
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::backend(S3, e))?;
        deleted += delete_objects(client, bucket, ids).await?;
        if page.is_truncated() != Some(true) {
            return Ok(deleted);
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_id_marker = page.next_version_id_marker().map(str::to_owned);
        if key_marker.is_none() && version_id_marker.is_none() {
            return Ok(deleted);
        }
    }
}
