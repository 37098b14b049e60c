//! The DynamoDB worker registry against the port contract, on a moto server, in a table made as
//! `minimoto setup` makes it.
//!
//! moto does not enforce what DynamoDB would here: Scan's 1 MB pages (one page holds the whole
//! test table, so pagination is exercised only by the code path, not by moto) and BatchGetItem's
//! unprocessed keys (moto answers every key at once).

use crate::support::{Moto, unique};
use minimoto_aws::registry::DynamoRegistry;
use minimoto_aws_admin::{Action, table::ensure_workers_table};
use minimoto_common::{
    contract,
    fleet::{Beat, WorkerState},
    ports::WorkerRegistry,
};

#[tokio::test]
async fn dynamodb_registry_keeps_the_contract() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let table = unique("workers");
    assert_eq!(
        ensure_workers_table(&config, &table, "minimoto-test")
            .await
            .expect("create the workers table"),
        Action::Created
    );
    let registry = DynamoRegistry::new(&config, &table);
    registry.check().await.expect("the table exists");
    contract::worker_registry(&registry).await;

    // Two registries on one table, as a worker and the scaler have: the scaler's drain request
    // reaches the worker's next beat, and the decisions ring is shared.
    let worker = DynamoRegistry::new(&config, &table);
    let now = chrono::Utc::now();
    let beat = Beat {
        id: "w-shared".into(),
        host: "h".into(),
        instance: None,
        version: "0".into(),
        state: WorkerState::Idle,
        job: None,
        started_at: now,
        idle_since: Some(now),
        jobs_done: 0,
        busy_seconds: 0.0,
        at: now,
    };
    assert!(!worker.beat(&beat).await.expect("beat").drain);
    assert!(registry.request_drain("w-shared").await.expect("drain"));
    assert!(worker.beat(&beat).await.expect("beat").drain);
    assert_eq!(
        worker.decisions().await.expect("decisions").len(),
        minimoto_common::fleet::DECISIONS_KEPT
    );
    let bad = Beat {
        id: "decision#seq".into(),
        ..beat
    };
    assert!(
        worker.beat(&bad).await.is_err(),
        "a worker id cannot clobber the decision ring"
    );
}

#[tokio::test]
async fn a_missing_workers_table_is_named_with_the_fix() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let table = unique("workers");
    let registry = DynamoRegistry::new(&config, &table);
    let err = registry
        .check()
        .await
        .expect_err("no table yet")
        .to_string();
    assert!(
        err.contains(&table) && err.contains("minimoto setup"),
        "{err}"
    );
    ensure_workers_table(&config, &table, "minimoto-test")
        .await
        .expect("create");
    registry.check().await.expect("the table exists now");
}
