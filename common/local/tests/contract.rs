//! The local adapters against the port contracts.

use std::sync::Arc;

use minimoto_common::{contract, ports::JobQueue};
use minimoto_local::{
    blob::LocalBlobStore, db::Db, events::SqliteEvents, jobs::SqliteJobStore, queue::SqliteQueue,
    registry::SqliteRegistry, signing::UrlSigner,
};

fn db(dir: &tempfile::TempDir) -> Db {
    Db::open(&dir.path().join("minimoto.db")).expect("open db")
}

#[tokio::test]
async fn sqlite_job_store_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    contract::job_store(&SqliteJobStore::new(db(&dir))).await;
    contract::job_listing(&SqliteJobStore::new(db(&dir))).await;
    contract::idempotency_keys(&SqliteJobStore::new(db(&dir))).await;
    contract::due_announcements(&SqliteJobStore::new(db(&dir))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_job_store_lets_one_racer_win() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Two connections to one file (two `Db::open`), as two processes would have.
    let a: Arc<dyn minimoto_common::ports::JobStore> = Arc::new(SqliteJobStore::new(db(&dir)));
    let b: Arc<dyn minimoto_common::ports::JobStore> = Arc::new(SqliteJobStore::new(db(&dir)));
    contract::job_store_races(a, b).await;
}

#[tokio::test]
async fn sqlite_events_queue_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    contract::event_queue(&SqliteEvents::new(db(&dir))).await;
}

#[tokio::test]
async fn sqlite_queue_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    contract::job_queue(&SqliteQueue::new(db(&dir), 3), 3, contract::Order::Fifo).await;
}

/// The embedded queue can take a message back by job id (the contract also admits a queue that
/// cannot, as SQS).
#[tokio::test]
async fn sqlite_queue_withdraws_a_message_by_job_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = SqliteQueue::new(db(&dir), 3);
    let (kept, taken) = (minimoto_common::JobId::new(), minimoto_common::JobId::new());
    queue.send(kept).await.expect("send");
    queue.send(taken).await.expect("send");
    assert!(queue.withdraw(taken).await.expect("withdraw"));
    assert!(!queue.withdraw(taken).await.expect("withdraw"), "only once");
    assert_eq!(queue.depth().await.expect("depth").visible, 1);
    let d = queue
        .receive(std::time::Duration::ZERO, std::time::Duration::from_secs(5))
        .await
        .expect("receive")
        .expect("the other message");
    assert_eq!(d.job_id, kept);
}

#[tokio::test]
async fn sqlite_queue_survives_a_reopen_and_is_shared_between_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = minimoto_common::JobId::new();
    SqliteQueue::new(db(&dir), 3).send(id).await.expect("send");
    let other = SqliteQueue::new(db(&dir), 3);
    let d = other
        .receive(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("receive")
        .expect("the message sent through another connection arrives");
    assert_eq!(d.job_id, id);
}

#[tokio::test]
async fn local_blob_store_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = UrlSigner::new(vec![1; 32], "http://127.0.0.1:8080");
    contract::blob_store(&LocalBlobStore::new(dir.path().join("blobs"), signer)).await;
}

#[tokio::test]
async fn sqlite_registry_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    contract::worker_registry(&SqliteRegistry::new(db(&dir))).await;
}

#[tokio::test]
async fn the_reclaimer_removes_what_no_job_owns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = LocalBlobStore::new(
        dir.path().join("blobs"),
        UrlSigner::new(vec![7; 32], "http://127.0.0.1:1"),
    );
    contract::reclaimer(&blobs, &SqliteJobStore::new(db(&dir))).await;
}
