//! `setup` and `cleanup` of a whole stack against moto: every resource tagged, a second setup
//! changing nothing, cleanup finding by tag what to delete (a dry run deleting nothing) and
//! leaving alone what has the stack's name but not its tag, and other stacks.

use std::collections::HashMap;

use crate::support::Moto;
use aws_config::SdkConfig;
use minimoto_aws::AwsSettings;
use minimoto_aws_admin::{
    Action, BucketOptions, Kind, ROLE_TAG, Report, STACK_TAG, cleanup, setup,
};

fn settings(stack: &str) -> AwsSettings {
    AwsSettings {
        stack: stack.into(),
        bucket: format!("{stack}-media"),
        table: format!("{stack}-jobs"),
        queue: format!("{stack}-jobs"),
        events_queue: format!("{stack}-events"),
        workers_table: format!("{stack}-workers"),
        max_receives: 8,
    }
}

fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

/// The tags of each resource of `settings` that exists, by kind.
async fn tags_of(
    config: &SdkConfig,
    settings: &AwsSettings,
) -> HashMap<Kind, HashMap<String, String>> {
    let mut all = HashMap::new();
    let s3 = s3(config);
    if s3
        .head_bucket()
        .bucket(&settings.bucket)
        .send()
        .await
        .is_ok()
    {
        let tags = match s3
            .get_bucket_tagging()
            .bucket(&settings.bucket)
            .send()
            .await
        {
            Ok(out) => out
                .tag_set()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect(),
            Err(_) => HashMap::new(),
        };
        all.insert(Kind::Bucket, tags);
    }
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    for (kind, table) in [
        (Kind::Table, &settings.table),
        (Kind::WorkersTable, &settings.workers_table),
    ] {
        let Ok(out) = dynamodb.describe_table().table_name(table).send().await else {
            continue;
        };
        let arn = out
            .table()
            .and_then(|t| t.table_arn())
            .expect("a table ARN");
        let tags = dynamodb
            .list_tags_of_resource()
            .resource_arn(arn)
            .send()
            .await
            .expect("table tags")
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        all.insert(kind, tags);
    }
    let sqs = aws_sdk_sqs::Client::new(config);
    for (kind, name) in [
        (Kind::Queue, settings.queue.clone()),
        (Kind::DeadLetterQueue, settings.dead_letter_queue()),
        (Kind::EventsQueue, settings.events_queue.clone()),
    ] {
        if let Ok(out) = sqs.get_queue_url().queue_name(&name).send().await {
            let url = out.queue_url.expect("a queue URL");
            let tags = sqs
                .list_queue_tags()
                .queue_url(url)
                .send()
                .await
                .expect("queue tags")
                .tags
                .unwrap_or_default();
            all.insert(kind, tags);
        }
    }
    all
}

fn actions(report: &Report) -> Vec<(Kind, String, Action)> {
    report
        .changes
        .iter()
        .map(|c| (c.kind, c.name.clone(), c.action.clone()))
        .collect()
}

fn all_kinds() -> [Kind; 6] {
    [
        Kind::Bucket,
        Kind::Table,
        Kind::WorkersTable,
        Kind::DeadLetterQueue,
        Kind::Queue,
        Kind::EventsQueue,
    ]
}

#[tokio::test]
async fn setup_tags_every_resource_and_a_second_setup_changes_nothing() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let settings = settings("alpha");
    let options = BucketOptions::default();

    let first = setup(&config, &settings, &options).await.expect("setup");
    let kinds: Vec<_> = first.changes.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, all_kinds(), "{first}");
    assert!(
        first.changes.iter().all(|c| c.action == Action::Created),
        "{first}"
    );
    assert_eq!(
        first
            .to_string()
            .lines()
            .filter(|l| l.starts_with("created "))
            .count(),
        6,
        "{first}"
    );

    let tags = tags_of(&config, &settings).await;
    for kind in all_kinds() {
        let tags = tags.get(&kind).unwrap_or_else(|| panic!("{kind} exists"));
        assert_eq!(
            tags.get(STACK_TAG).map(String::as_str),
            Some("alpha"),
            "{kind}: {tags:?}"
        );
        assert_eq!(
            tags.get(ROLE_TAG).map(String::as_str),
            Some(kind.role()),
            "{kind}: {tags:?}"
        );
    }

    let second = setup(&config, &settings, &options)
        .await
        .expect("setup again");
    assert!(!second.changed(), "{second}");
    assert!(
        second.changes.iter().all(|c| c.action == Action::Unchanged),
        "{second}"
    );
    assert!(second.summary().starts_with("nothing changed"), "{second}");
}

/// Setup brings back what drifted and says what it changed: here a lost tag and a hand-edited
/// queue attribute.
#[tokio::test]
async fn setup_repairs_drift_and_reports_it() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let settings = settings("drift");
    setup(&config, &settings, &BucketOptions::default())
        .await
        .expect("setup");
    let sqs = aws_sdk_sqs::Client::new(&config);
    let url = sqs
        .get_queue_url()
        .queue_name(&settings.queue)
        .send()
        .await
        .expect("url")
        .queue_url
        .expect("a url");
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "30",
        )
        .send()
        .await
        .expect("edit by hand");
    sqs.untag_queue()
        .queue_url(&url)
        .tag_keys(ROLE_TAG)
        .send()
        .await
        .expect("untag by hand");

    let report = setup(&config, &settings, &BucketOptions::default())
        .await
        .expect("setup again");
    assert_eq!(
        report.get(Kind::Queue, &settings.queue),
        Some(&Action::Updated(vec![
            "tags".into(),
            "visibility timeout".into()
        ])),
        "{report}"
    );
    assert_eq!(
        report
            .changes
            .iter()
            .filter(|c| c.action == Action::Unchanged)
            .count(),
        5,
        "{report}"
    );
    assert!(report.summary().contains("1 updated"), "{report}");
}

#[tokio::test]
async fn cleanup_deletes_exactly_the_tagged_resources() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    // The stack's resources under names of its own: cleanup must find them by tag.
    let custom = AwsSettings {
        bucket: "gamma-custom-media".into(),
        table: "gamma-custom-jobs".into(),
        queue: "gamma-custom-jobs".into(),
        events_queue: "gamma-custom-events".into(),
        workers_table: "gamma-custom-workers".into(),
        ..settings("gamma")
    };
    setup(&config, &custom, &BucketOptions::default())
        .await
        .expect("setup gamma");
    // Another stack, one of whose resources has a name gamma's defaults would give.
    let delta = AwsSettings {
        table: "gamma-jobs".into(),
        workers_table: "gamma-workers".into(),
        ..settings("delta")
    };
    setup(&config, &delta, &BucketOptions::default())
        .await
        .expect("setup delta");
    // Made by hand with gamma's default names, untagged.
    let defaults = settings("gamma");
    s3(&config)
        .create_bucket()
        .bucket(&defaults.bucket)
        .send()
        .await
        .expect("an untagged bucket");
    aws_sdk_sqs::Client::new(&config)
        .create_queue()
        .queue_name(&defaults.queue)
        .send()
        .await
        .expect("an untagged queue");

    let expected_deletions = [
        (Kind::Queue, custom.queue.clone()),
        (Kind::DeadLetterQueue, custom.dead_letter_queue()),
        (Kind::EventsQueue, custom.events_queue.clone()),
        (Kind::Table, custom.table.clone()),
        (Kind::WorkersTable, custom.workers_table.clone()),
        (Kind::Bucket, custom.bucket.clone()),
    ];
    let kept = |report: &Report| {
        let mut kept: Vec<_> = report
            .changes
            .iter()
            .filter_map(|c| match &c.action {
                Action::Kept(why) => Some((c.kind, c.name.clone(), why.clone())),
                _ => None,
            })
            .collect();
        kept.sort();
        kept
    };

    let dry = cleanup(&config, &defaults, true).await.expect("dry run");
    let listed: Vec<_> = dry
        .changes
        .iter()
        .filter(|c| c.action == Action::WouldDelete)
        .map(|c| (c.kind, c.name.clone()))
        .collect();
    assert_eq!(listed, expected_deletions, "{dry}");
    assert!(!dry.changed(), "{dry}");
    assert!(dry.summary().contains("nothing deleted"), "{dry}");
    let untouched = tags_of(&config, &custom).await;
    assert_eq!(
        untouched.len(),
        6,
        "a dry run deletes nothing: {untouched:?}"
    );

    let done = cleanup(&config, &defaults, false).await.expect("cleanup");
    let deleted: Vec<_> = done
        .changes
        .iter()
        .filter(|c| c.action == Action::Deleted)
        .map(|c| (c.kind, c.name.clone()))
        .collect();
    assert_eq!(deleted, expected_deletions, "{done}");
    let kept_now = kept(&done);
    let kept_what: Vec<_> = kept_now.iter().map(|(k, n, _)| (*k, n.as_str())).collect();
    assert_eq!(
        kept_what,
        [
            (Kind::Queue, "gamma-jobs"),
            (Kind::Table, "gamma-jobs"),
            (Kind::WorkersTable, "gamma-workers"),
            (Kind::Bucket, "gamma-media"),
        ],
        "resources with gamma's names but not its tag are kept, and said so: {done}"
    );
    assert!(kept_now[1].2.contains("stack `delta`"), "{done}");
    assert!(kept_now[2].2.contains("stack `delta`"), "{done}");
    assert!(kept_now[0].2.contains("not its tag"), "{done}");
    assert!(
        tags_of(&config, &custom).await.is_empty(),
        "gamma's resources are gone"
    );
    assert_eq!(
        tags_of(&config, &delta).await.len(),
        6,
        "the other stack keeps all its resources"
    );
    let untagged = tags_of(&config, &defaults).await;
    assert!(
        untagged.contains_key(&Kind::Bucket) && untagged.contains_key(&Kind::Queue),
        "the untagged look-alikes are still there: {untagged:?}"
    );

    let again = cleanup(&config, &defaults, false)
        .await
        .expect("cleanup again");
    assert!(!again.changed(), "{again}");
    assert!(again.summary().starts_with("nothing to delete"), "{again}");
    assert_eq!(
        kept(&again),
        kept_now,
        "the same look-alikes are reported again"
    );

    let delta_again = setup(&config, &delta, &BucketOptions::default())
        .await
        .expect("setup delta again");
    assert!(
        actions(&delta_again)
            .iter()
            .all(|(_, _, a)| *a == Action::Unchanged),
        "{delta_again}"
    );
}

/// A jobs table from before job listings: `setup` adds the two indexes the listing reads, and
/// reports them.
#[tokio::test]
async fn setup_adds_the_indexes_to_a_jobs_table_without_them() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let settings = settings("indexes");
    setup(&config, &settings, &BucketOptions::default())
        .await
        .expect("setup");
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    for index in [
        minimoto_aws::jobs::BY_TENANT,
        minimoto_aws::jobs::BY_TENANT_STATUS,
        minimoto_aws::jobs::BY_HOOK_DUE,
    ] {
        dynamodb
            .update_table()
            .table_name(&settings.table)
            .global_secondary_index_updates(
                aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
                    .delete(
                        aws_sdk_dynamodb::types::DeleteGlobalSecondaryIndexAction::builder()
                            .index_name(index)
                            .build()
                            .expect("delete action"),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("drop the index by hand");
    }
    let store = minimoto_aws::jobs::DynamoJobStore::new(&config, &settings.table);
    let refused = store
        .check()
        .await
        .expect_err("a table without its indexes is refused at start")
        .to_string();
    assert!(
        refused.contains("no index by-tenant, by-tenant-status, by-hook-due")
            && refused.contains("minimoto setup"),
        "{refused}"
    );
    let report = setup(&config, &settings, &BucketOptions::default())
        .await
        .expect("setup again");
    assert_eq!(
        report.get(Kind::Table, &settings.table),
        Some(&Action::Updated(vec![
            "index by-tenant".into(),
            "index by-tenant-status".into(),
            "index by-hook-due".into()
        ])),
        "{report}"
    );
    let indexes: Vec<String> = dynamodb
        .describe_table()
        .table_name(&settings.table)
        .send()
        .await
        .expect("describe")
        .table
        .expect("table")
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name().map(str::to_owned))
        .collect();
    assert_eq!(indexes.len(), 3, "{indexes:?}");
    store
        .check()
        .await
        .expect("set up again, the table is accepted");
}
