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
    contract::due_webhooks(&store).await;
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
