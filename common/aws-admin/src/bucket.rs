//! The S3 bucket: created with minimoto's lifecycle rule, and emptied and deleted by `cleanup`.

use aws_config::SdkConfig;
use aws_sdk_s3::{
    Client,
    error::ProvideErrorMetadata,
    operation::{create_bucket::CreateBucketError, head_bucket::HeadBucketError},
    types::{
        AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint,
        CreateBucketConfiguration, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
        ObjectIdentifier,
    },
};
use minimoto_aws::{
    blob::{delete_listed, delete_objects, s3_client as client},
    sdk_error,
};
use minimoto_common::error::{Error, Result};

const S3: &str = "s3";
/// The lifecycle rule [`create_bucket`] adds.
const LIFECYCLE_RULE_ID: &str = "minimoto-abort-incomplete-multipart-uploads";

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

/// Creates the bucket (in the configured region) unless it exists; true if it was created.
///
/// Asks first because in us-east-1 S3 answers a repeated `CreateBucket` of one's own bucket with
/// success, not `BucketAlreadyOwnedByYou`. A bucket of another account is a `Conflict`. Also adds
/// a lifecycle rule aborting multipart uploads left incomplete for a day, unless the bucket
/// already has lifecycle rules (they are the owner's, and replacing them would drop them).
pub async fn create_bucket(config: &SdkConfig, bucket: &str) -> Result<bool> {
    let client = client(config);
    let created = if bucket_exists(&client, bucket).await? {
        false
    } else {
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
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(CreateBucketError::is_bucket_already_owned_by_you) =>
            {
                false
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(CreateBucketError::is_bucket_already_exists) =>
            {
                return Err(Error::Conflict(format!(
                    "S3 bucket `{bucket}` belongs to another account (names are global): \
                     pick another"
                )));
            }
            Err(e) => return Err(sdk_error(S3, &format!("create bucket {bucket}"), e)),
        }
    };
    ensure_lifecycle_rule(&client, bucket).await;
    Ok(created)
}

/// Adds the abort-incomplete-uploads rule to a bucket without lifecycle rules. Only logs a
/// failure: the rule is hygiene, and the bucket works without it.
async fn ensure_lifecycle_rule(client: &Client, bucket: &str) {
    match client
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) if !out.rules().is_empty() => {
            if !out
                .rules()
                .iter()
                .any(|r| r.id() == Some(LIFECYCLE_RULE_ID))
            {
                tracing::info!(
                    bucket,
                    "the bucket has lifecycle rules of its own; not adding minimoto's \
                     (abort multipart uploads left incomplete for a day)"
                );
            }
            return;
        }
        Ok(_) => {}
        Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => {}
        Err(e) => {
            let error = aws_sdk_s3::error::DisplayErrorContext(&e);
            tracing::warn!(bucket, %error, "could not read the bucket lifecycle rules");
            return;
        }
    }
    let rule = LifecycleRule::builder()
        .id(LIFECYCLE_RULE_ID)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .status(ExpirationStatus::Enabled)
        .abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(1)
                .build(),
        )
        .build();
    let config = rule.and_then(|rule| BucketLifecycleConfiguration::builder().rules(rule).build());
    let put = match config {
        Ok(config) => client
            .put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(config)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(error) = put {
        tracing::warn!(
            bucket,
            error,
            "could not add the lifecycle rule aborting incomplete multipart uploads"
        );
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
