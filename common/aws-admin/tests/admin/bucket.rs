//! The S3 bucket `setup` makes, against moto: created once, tagged, with minimoto's lifecycle
//! and CORS rules beside anyone else's, and emptied and deleted by `cleanup`.
//!
//! moto stores lifecycle and CORS configurations but does not enforce them: it never expires an
//! object or aborts an upload, so these tests check what the bucket is told, not what S3 does.

use std::collections::HashMap;

use crate::support::{Moto, unique};
use aws_config::{Region, SdkConfig};
use aws_sdk_s3::{
    Client,
    primitives::ByteStream,
    types::{
        BucketLifecycleConfiguration, BucketVersioningStatus, CorsConfiguration, CorsRule,
        ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, Tag, Tagging,
        VersioningConfiguration,
    },
};
use minimoto_aws::blob::S3BlobStore;
use minimoto_aws_admin::{
    Action, BucketOptions, STACK_TAG,
    bucket::{
        ABORT_UPLOADS_RULE_ID, CORS_RULE_ID, EXPIRE_INPUTS_RULE_ID, EXPIRE_OUTPUTS_RULE_ID,
        delete_bucket, ensure_bucket,
    },
};
use minimoto_common::{error::Error, ports::BlobStore};

const STACK: &str = "minimoto-test";

/// A plain S3 client for looking behind the admin code's back.
fn raw_client(config: &SdkConfig) -> Client {
    Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

async fn tags(client: &Client, bucket: &str) -> HashMap<String, String> {
    client
        .get_bucket_tagging()
        .bucket(bucket)
        .send()
        .await
        .expect("bucket tags")
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

async fn lifecycle(client: &Client, bucket: &str) -> Vec<LifecycleRule> {
    client
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .expect("lifecycle rules")
        .rules
        .unwrap_or_default()
}

async fn cors(client: &Client, bucket: &str) -> Vec<CorsRule> {
    client
        .get_bucket_cors()
        .bucket(bucket)
        .send()
        .await
        .expect("CORS rules")
        .cors_rules
        .unwrap_or_default()
}

fn rule<'a>(rules: &'a [LifecycleRule], id: &str) -> &'a LifecycleRule {
    rules
        .iter()
        .find(|r| r.id() == Some(id))
        .unwrap_or_else(|| panic!("no lifecycle rule {id}: {rules:?}"))
}

fn options(days: u32) -> BucketOptions {
    BucketOptions {
        input_retention_days: days,
        output_retention_days: 45,
        ..BucketOptions::default()
    }
}

#[tokio::test]
async fn buckets_are_created_once_and_deleted_with_everything_in_them() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let bucket = unique("life");
    let defaults = BucketOptions::default();
    assert_eq!(
        ensure_bucket(&config, &bucket, STACK, &defaults)
            .await
            .expect("create"),
        Action::Created
    );
    assert_eq!(
        ensure_bucket(&config, &bucket, STACK, &defaults)
            .await
            .expect("create again"),
        Action::Unchanged,
        "an existing bucket as setup leaves it is reported unchanged"
    );

    let store = S3BlobStore::new(&config, &bucket);
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("a.bin");
    std::fs::write(&src, b"abc").expect("write");
    for i in 0..5 {
        store
            .put_file(&format!("inputs/{i}/0000.jpg"), &src, "image/jpeg")
            .await
            .expect("put");
    }
    let client = raw_client(&config);
    client
        .create_multipart_upload()
        .bucket(&bucket)
        .key("outputs/half-done.mp4")
        .send()
        .await
        .expect("start an upload");

    assert!(delete_bucket(&config, &bucket).await.expect("delete"));
    assert!(
        client.head_bucket().bucket(&bucket).send().await.is_err(),
        "the bucket is gone"
    );
    assert!(
        !delete_bucket(&config, &bucket).await.expect("delete again"),
        "deleting a missing bucket says so"
    );
}

/// The lifecycle rules (abort incomplete uploads after a day; expire `inputs/` and `outputs/`
/// after their configured days) and the CORS rule are on the bucket after setup, with the
/// stack's tags.
#[tokio::test]
async fn setup_tags_the_bucket_and_sets_lifecycle_and_cors_rules() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let bucket = unique("rules");
    ensure_bucket(&config, &bucket, STACK, &options(30))
        .await
        .expect("create");
    let client = raw_client(&config);

    let tags = tags(&client, &bucket).await;
    assert_eq!(
        tags.get(STACK_TAG).map(String::as_str),
        Some(STACK),
        "{tags:?}"
    );
    assert_eq!(tags.get("minimoto:role").map(String::as_str), Some("media"));

    let rules = lifecycle(&client, &bucket).await;
    assert_eq!(rules.len(), 3, "{rules:?}");
    let abort = rule(&rules, ABORT_UPLOADS_RULE_ID);
    assert_eq!(
        abort
            .abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation()),
        Some(1)
    );
    assert_eq!(abort.status(), &ExpirationStatus::Enabled);
    let expire = rule(&rules, EXPIRE_INPUTS_RULE_ID);
    assert_eq!(expire.expiration().and_then(|e| e.days()), Some(30));
    assert_eq!(
        expire.filter().and_then(|f| f.prefix()),
        Some(minimoto_common::layout::INPUTS),
    );
    assert_eq!(expire.status(), &ExpirationStatus::Enabled);
    let outputs = rule(&rules, EXPIRE_OUTPUTS_RULE_ID);
    assert_eq!(outputs.expiration().and_then(|e| e.days()), Some(45));
    assert_eq!(
        outputs.filter().and_then(|f| f.prefix()),
        Some(minimoto_common::layout::OUTPUTS),
    );

    // Outputs kept until deleted (retention 0): their rule goes, the others stay.
    let forever = BucketOptions {
        output_retention_days: 0,
        ..options(30)
    };
    assert_eq!(
        ensure_bucket(&config, &bucket, STACK, &forever)
            .await
            .expect("again"),
        Action::Updated(vec!["lifecycle rules".into()])
    );
    let rules = lifecycle(&client, &bucket).await;
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert!(rules.iter().all(|r| r.id() != Some(EXPIRE_OUTPUTS_RULE_ID)));

    let cors = cors(&client, &bucket).await;
    let [ours] = cors.as_slice() else {
        panic!("one CORS rule: {cors:?}");
    };
    assert_eq!(ours.id(), Some(CORS_RULE_ID));
    assert_eq!(ours.allowed_origins(), ["*"]);
    let mut methods = ours.allowed_methods().to_vec();
    methods.sort();
    assert_eq!(methods, ["GET", "HEAD"]);
    for header in ["Content-Length", "Content-Range", "Accept-Ranges", "ETag"] {
        assert!(
            ours.expose_headers().iter().any(|h| h == header),
            "{header} exposed: {ours:?}"
        );
    }
    assert_eq!(ours.max_age_seconds(), Some(3600));
}

/// Rules and tags the bucket's owner added stay; minimoto's are added or replaced by id.
#[tokio::test]
async fn setup_keeps_foreign_rules_and_tags_and_replaces_its_own() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let bucket = unique("shared");
    let client = raw_client(&config);
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("a bucket made by hand");
    let foreign_rule = LifecycleRule::builder()
        .id("owners-logs")
        .filter(LifecycleRuleFilter::builder().prefix("logs/").build())
        .status(ExpirationStatus::Enabled)
        .expiration(LifecycleExpiration::builder().days(90).build())
        .build()
        .expect("rule");
    client
        .put_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(foreign_rule)
                .build()
                .expect("lifecycle"),
        )
        .send()
        .await
        .expect("owner's lifecycle rule");
    let foreign_cors = CorsRule::builder()
        .id("owners-uploads")
        .allowed_methods("PUT")
        .allowed_origins("https://owner.example")
        .build()
        .expect("cors rule");
    client
        .put_bucket_cors()
        .bucket(&bucket)
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(foreign_cors)
                .build()
                .expect("cors"),
        )
        .send()
        .await
        .expect("owner's CORS rule");
    client
        .put_bucket_tagging()
        .bucket(&bucket)
        .tagging(
            Tagging::builder()
                .tag_set(
                    Tag::builder()
                        .key("team")
                        .value("video")
                        .build()
                        .expect("tag"),
                )
                .build()
                .expect("tagging"),
        )
        .send()
        .await
        .expect("owner's tag");

    assert_eq!(
        ensure_bucket(&config, &bucket, STACK, &options(7))
            .await
            .expect("adopt"),
        Action::Updated(vec![
            "tags".into(),
            "lifecycle rules".into(),
            "CORS rule".into()
        ])
    );
    let rules = lifecycle(&client, &bucket).await;
    assert_eq!(rules.len(), 4, "{rules:?}");
    assert_eq!(
        rule(&rules, "owners-logs")
            .expiration()
            .and_then(|e| e.days()),
        Some(90)
    );
    let cors_rules = cors(&client, &bucket).await;
    assert_eq!(cors_rules.len(), 2, "{cors_rules:?}");
    let tag_set = tags(&client, &bucket).await;
    assert_eq!(tag_set.get("team").map(String::as_str), Some("video"));
    assert_eq!(tag_set.get(STACK_TAG).map(String::as_str), Some(STACK));

    // A new retention replaces minimoto's rule, not adds one; the owner's stays.
    assert_eq!(
        ensure_bucket(&config, &bucket, STACK, &options(14))
            .await
            .expect("new retention"),
        Action::Updated(vec!["lifecycle rules".into()])
    );
    let rules = lifecycle(&client, &bucket).await;
    assert_eq!(rules.len(), 4, "{rules:?}");
    assert_eq!(
        rule(&rules, EXPIRE_INPUTS_RULE_ID)
            .expiration()
            .and_then(|e| e.days()),
        Some(14)
    );
    assert!(rules.iter().any(|r| r.id() == Some("owners-logs")));
    assert_eq!(
        ensure_bucket(&config, &bucket, STACK, &options(14))
            .await
            .expect("again"),
        Action::Unchanged
    );
    assert_eq!(cors(&client, &bucket).await.len(), 2);
}

#[tokio::test]
async fn a_bucket_of_another_stack_is_refused_and_left_alone() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let bucket = unique("theirs");
    ensure_bucket(&config, &bucket, "other-stack", &options(7))
        .await
        .expect("the other stack's setup");
    let err = ensure_bucket(&config, &bucket, STACK, &options(30))
        .await
        .expect_err("another stack's bucket");
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("other-stack")),
        "{err}"
    );
    let client = raw_client(&config);
    assert_eq!(
        tags(&client, &bucket)
            .await
            .get(STACK_TAG)
            .map(String::as_str),
        Some("other-stack")
    );
    assert_eq!(
        rule(&lifecycle(&client, &bucket).await, EXPIRE_INPUTS_RULE_ID)
            .expiration()
            .and_then(|e| e.days()),
        Some(7),
        "nothing was changed on it"
    );
}

#[test]
fn options_are_checked_before_any_call() {
    for bad in [
        options(0),
        options(3651),
        BucketOptions {
            cors_origins: vec![],
            ..BucketOptions::default()
        },
        BucketOptions {
            cors_origins: vec!["app.example.com".into()],
            ..BucketOptions::default()
        },
        BucketOptions {
            cors_origins: vec!["https://app.example.com/".into()],
            ..BucketOptions::default()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?} must be refused");
    }
    assert!(
        BucketOptions {
            cors_origins: vec![
                "https://app.example.com".into(),
                "http://localhost:3000".into()
            ],
            ..options(3650)
        }
        .validate()
        .is_ok()
    );
}

#[tokio::test]
async fn a_versioned_bucket_is_deleted_too() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let bucket = unique("versioned");
    ensure_bucket(&config, &bucket, STACK, &options(7))
        .await
        .expect("create");
    let client = raw_client(&config);
    client
        .put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("enable versioning");
    for body in ["v1", "v2"] {
        client
            .put_object()
            .bucket(&bucket)
            .key("k")
            .body(ByteStream::from_static(body.as_bytes()))
            .send()
            .await
            .expect("put");
    }
    // Leaves two versions and a delete marker.
    let store = S3BlobStore::new(&config, &bucket);
    assert_eq!(store.delete_prefix("k").await.expect("delete"), 1);
    assert!(
        delete_bucket(&config, &bucket)
            .await
            .expect("delete bucket")
    );
    assert!(client.head_bucket().bucket(&bucket).send().await.is_err());
}

#[tokio::test]
async fn buckets_outside_us_east_1_get_a_location_constraint() {
    let moto = Moto::start();
    let config = moto
        .sdk_config()
        .await
        .into_builder()
        .region(Region::new("eu-west-1"))
        .build();
    let bucket = unique("eu");
    assert_eq!(
        ensure_bucket(&config, &bucket, STACK, &options(7))
            .await
            .expect("create in eu-west-1"),
        Action::Created
    );
    assert_eq!(
        ensure_bucket(&config, &bucket, STACK, &options(7))
            .await
            .expect("create again"),
        Action::Unchanged
    );
    let location = raw_client(&config)
        .get_bucket_location()
        .bucket(&bucket)
        .send()
        .await
        .expect("location");
    assert_eq!(
        location.location_constraint().map(|c| c.as_str()),
        Some("eu-west-1")
    );
    assert!(delete_bucket(&config, &bucket).await.expect("delete"));
}
