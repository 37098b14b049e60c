//! The control loop's promises, on each fleet: a worker chosen for removal is drained, never
//! terminated while busy, and terminated only once it reports `stopped`; a worker whose heartbeat
//! stops is terminated and replaced. The fleet's members run no worker here: the test beats for
//! them, so each state is reached exactly when the test says.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use minimoto_common::{
    JobId,
    fleet::{Beat, WorkerState},
    ports::{JobQueue, WorkerRegistry},
};
use minimoto_local::{db::Db, queue::SqliteQueue, registry::SqliteRegistry};
use minimoto_scaler::{
    control::Controller,
    fleet::{
        Fleet,
        local::{LocalFleet, WorkerCommand},
    },
    policy::Knobs,
};

fn knobs() -> Knobs {
    Knobs {
        min_workers: 1,
        max_workers: 2,
        target_wait: 60.0,
        default_job_seconds: 60.0,
        idle_before_removal: 0.0,
        scale_in_window: 0.0,
        heartbeat_timeout: 3.0,
        boot_timeout: 600.0,
        ..Knobs::default()
    }
}

async fn beat(registry: &dyn WorkerRegistry, id: &str, state: WorkerState) -> bool {
    let now = Utc::now();
    registry
        .beat(&Beat {
            id: id.into(),
            host: "test".into(),
            instance: None,
            version: "0".into(),
            state,
            job: (state == WorkerState::Busy).then(JobId::new),
            started_at: now,
            idle_since: (state == WorkerState::Idle).then(|| now - chrono::Duration::seconds(600)),
            jobs_done: 0,
            busy_seconds: 0.0,
            at: now,
        })
        .await
        .expect("beat")
        .drain
}

async fn members(fleet: &dyn Fleet) -> Vec<String> {
    let mut ids: Vec<String> = fleet
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.worker_id)
        .collect();
    ids.sort();
    ids
}

/// The handshake and the replacement on `fleet`, with the queue and registry on SQLite.
pub async fn drain_handshake_and_replacement(fleet: Arc<dyn Fleet>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("m.db")).expect("db");
    let queue = Arc::new(SqliteQueue::new(db.clone(), 10));
    let registry = Arc::new(SqliteRegistry::new(db));
    let mut control = Controller::new(queue.clone(), registry.clone(), fleet.clone(), knobs())
        .expect("controller");

    // Two waiting jobs: one worker per job (60 s jobs against a 60 s wait), two at once.
    for _ in 0..2 {
        queue.send(JobId::new()).await.expect("send");
    }
    let d = control.tick().await.expect("tick");
    assert_eq!(d.launched(), 2, "{d:#?}");
    let ids = members(fleet.as_ref()).await;
    assert_eq!(ids.len(), 2, "two members launched: {ids:?}");
    let (busy, idle) = (&ids[0], &ids[1]);

    // One takes a job and stays busy, the other finds nothing: the queue is empty.
    for _ in 0..2 {
        queue
            .receive(Duration::from_millis(100), Duration::from_secs(600))
            .await
            .expect("receive");
    }
    beat(registry.as_ref(), busy, WorkerState::Busy).await;
    beat(registry.as_ref(), idle, WorkerState::Idle).await;
    let d = control.tick().await.expect("tick");
    assert_eq!(
        d.drained().collect::<Vec<_>>(),
        [idle.as_str()],
        "the idle one is drained: {d:#?}"
    );
    assert_eq!(
        d.terminated().count(),
        0,
        "nothing is terminated on a drain: {d:#?}"
    );
    assert!(
        beat(registry.as_ref(), idle, WorkerState::Draining).await,
        "it learns of the drain"
    );

    // While it drains and the busy one works, rounds pass and nobody is terminated.
    for _ in 0..3 {
        beat(registry.as_ref(), busy, WorkerState::Busy).await;
        let d = control.tick().await.expect("tick");
        assert!(
            d.terminated().all(|w| w != busy) && d.drained().all(|w| w != busy),
            "a busy worker is never drained or terminated: {d:#?}"
        );
        assert_eq!(
            d.terminated().count(),
            0,
            "the draining one is not terminated yet: {d:#?}"
        );
    }
    assert_eq!(members(fleet.as_ref()).await.len(), 2);

    // It reports `stopped`: now it is terminated, and forgotten.
    beat(registry.as_ref(), idle, WorkerState::Stopped).await;
    beat(registry.as_ref(), busy, WorkerState::Busy).await;
    let d = control.tick().await.expect("tick");
    assert_eq!(
        d.terminated().collect::<Vec<_>>(),
        [idle.as_str()],
        "{d:#?}"
    );
    let start = std::time::Instant::now();
    while members(fleet.as_ref()).await != [busy.clone()] {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the stopped member is still listed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let records = registry.list().await.expect("list");
    assert!(
        records.iter().all(|r| &r.beat.id != idle),
        "its record is gone"
    );

    // The busy one goes silent (a crash): past the heartbeat timeout it is terminated and, the
    // minimum being 1, replaced in the same round.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let d = control.tick().await.expect("tick");
    assert_eq!(
        d.terminated().collect::<Vec<_>>(),
        [busy.as_str()],
        "{d:#?}"
    );
    assert_eq!(d.launched(), 1, "replaced at once: {d:#?}");
    let start = std::time::Instant::now();
    loop {
        let now = members(fleet.as_ref()).await;
        if now.len() == 1 && !now.contains(busy) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "members {now:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for id in members(fleet.as_ref()).await {
        fleet.terminate(&id).await.expect("clean up");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_fleet_drains_before_it_terminates_and_replaces_the_dead() {
    let fleet = Arc::new(LocalFleet::new(WorkerCommand {
        program: "sleep".into(),
        args: vec!["600".into()],
        env: vec![],
    }));
    drain_handshake_and_replacement(fleet).await;
}

/// The same on the EC2 fleet against moto: instances are launched, drained before they are
/// terminated, and a silent one is replaced by a new instance.
#[cfg(feature = "aws")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_fleet_drains_before_it_terminates_and_replaces_the_dead() {
    let (_moto, _config, fleet) = crate::ec2::fleet_on_moto("handshake", false).await;
    drain_handshake_and_replacement(Arc::new(fleet)).await;
}
