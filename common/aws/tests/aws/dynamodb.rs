//! The DynamoDB job store against the port contract, on a moto server.

use std::sync::Arc;

use crate::support::{Moto, unique};
use minimoto_aws::jobs::DynamoJobStore;
use minimoto_aws_admin::{Action, table::ensure_table};
use minimoto_common::{contract, ports::JobStore};

#[tokio::test]
async fn dynamodb_job_store_keeps_the_contract() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let table = unique("jobs");
    assert_eq!(
        ensure_table(&config, &table, "minimoto-test")
            .await
            .expect("create table"),
        Action::Created
    );
    let store = DynamoJobStore::new(&config, &table);
    store.check().await.expect("the table exists");
    contract::job_store(&store).await;
    contract::job_listing(&store).await;
    contract::due_announcements(&store).await;
    contract::idempotency_keys(&store).await;
    // Two clients on one table, as two processes would have.
    let a: Arc<dyn JobStore> = Arc::new(store);
    let b: Arc<dyn JobStore> = Arc::new(DynamoJobStore::new(&config, &table));
    contract::job_store_races(a, b).await;
}

#[tokio::test]
async fn a_missing_table_is_named_with_the_fix() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let table = unique("jobs");
    let store = DynamoJobStore::new(&config, &table);
    let err = store.check().await.expect_err("no table yet").to_string();
    assert!(
        err.contains(&table) && err.contains("minimoto setup"),
        "{err}"
    );
    ensure_table(&config, &table, "minimoto-test")
        .await
        .expect("create");
    store.check().await.expect("the table exists now");
}

/// The table's TTL is on, on the attribute where each ended job's record expiry is written.
#[tokio::test]
async fn an_ended_jobs_record_carries_its_expiry_for_the_tables_ttl() {
    use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
    use minimoto_common::{job::Job, retention::Retention, spec::RenderSpec};

    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let table = unique("jobs");
    ensure_table(&config, &table, "minimoto-test")
        .await
        .expect("create");
    let client = aws_sdk_dynamodb::Client::new(&config);
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .expect("describe ttl");
    let ttl = ttl.time_to_live_description().expect("a TTL");
    assert_eq!(ttl.attribute_name(), Some(minimoto_aws::jobs::EXPIRES));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));

    let store = DynamoJobStore::new(&config, &table);
    let now = chrono::Utc::now();
    let mut job = Job::new(
        minimoto_common::JobId::new(),
        RenderSpec::default(),
        Vec::new(),
        now,
    );
    job.retention = Retention::days(7);
    store.create(&job).await.expect("create");
    let expires = |id: String| {
        let client = client.clone();
        let table = table.clone();
        async move {
            client
                .get_item()
                .table_name(&table)
                .key("id", AttributeValue::S(id))
                .send()
                .await
                .expect("get")
                .item
                .expect("item")
                .get(minimoto_aws::jobs::EXPIRES)
                .map(|v| v.as_n().expect("a number").clone())
        }
    };
    assert_eq!(
        expires(job.id.to_string()).await,
        None,
        "a queued job never expires"
    );
    let mut ended = job.clone();
    ended.cancel(now).expect("cancel");
    store.replace(&ended).await.expect("replace");
    assert_eq!(
        expires(job.id.to_string()).await,
        Some((now + chrono::Duration::days(37)).timestamp().to_string()),
        "the record expires 7 days and the 30-day grace after the end"
    );
}
