//! The DynamoDB job store against the port contract, on a moto server.

mod support;

use std::sync::Arc;

use minimoto_aws::jobs::DynamoJobStore;
use minimoto_aws_admin::table::{create_table, delete_table};
use minimoto_common::{contract, ports::JobStore};
use support::{Moto, unique};

#[tokio::test]
async fn dynamodb_job_store_keeps_the_contract() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let table = unique("jobs");
    assert!(create_table(&config, &table).await.expect("create table"));
    let store = DynamoJobStore::new(&config, &table);
    store.check().await.expect("the table exists");
    contract::job_store(&store).await;
    let shared: Arc<dyn JobStore> = Arc::new(store);
    contract::job_store_races(shared).await;
}

#[tokio::test]
async fn the_table_is_created_once_and_missing_tables_are_named() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let table = unique("jobs");
    let store = DynamoJobStore::new(&config, &table);
    let err = store.check().await.expect_err("no table yet").to_string();
    assert!(
        err.contains(&table) && err.contains("minimoto setup"),
        "{err}"
    );
    assert!(create_table(&config, &table).await.expect("create"));
    assert!(
        !create_table(&config, &table).await.expect("create again"),
        "idempotent"
    );
    assert!(delete_table(&config, &table).await.expect("delete"));
    assert!(!delete_table(&config, &table).await.expect("delete again"));
}
