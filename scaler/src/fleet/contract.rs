//! The behaviour every [`Fleet`] shows: launched members are listed under their worker ids, and
//! termination removes exactly the member named, idempotently. Each adapter's tests run
//! [`fleet`] on a fresh, empty fleet.

use std::time::Duration;

use super::{Fleet, Member};

/// How long a fleet may take to show a change in its list (EC2 lists are eventually consistent).
const SETTLE: Duration = Duration::from_secs(30);

async fn listed_ids(fleet: &dyn Fleet) -> Vec<String> {
    let mut ids: Vec<String> = fleet
        .list()
        .await
        .expect("the fleet lists its members")
        .into_iter()
        .map(|m| m.worker_id)
        .collect();
    ids.sort();
    ids
}

async fn eventually(fleet: &dyn Fleet, want: &[&str], what: &str) {
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    let start = std::time::Instant::now();
    loop {
        let ids = listed_ids(fleet).await;
        if ids == want {
            return;
        }
        assert!(
            start.elapsed() < SETTLE,
            "{what}: the fleet lists {ids:?}, expected {want:?} within {SETTLE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Launch, list, terminate, terminate again.
pub async fn fleet(fleet: &dyn Fleet) {
    assert!(
        listed_ids(fleet).await.is_empty(),
        "a fresh fleet lists no members"
    );
    let launched: Vec<Member> = fleet.launch(2).await.expect("launch 2");
    assert_eq!(launched.len(), 2, "launching 2 returns 2 members");
    let (a, b) = (&launched[0].worker_id, &launched[1].worker_id);
    assert_ne!(a, b, "each member has its own worker id");
    for m in &launched {
        assert!(
            m.worker_id.starts_with("w-") && !m.handle.is_empty(),
            "a member has a worker id and a handle: {m:?}"
        );
    }
    eventually(fleet, &[a, b], "after launching two").await;

    fleet.terminate(a).await.expect("terminate one");
    eventually(fleet, &[b], "after terminating one").await;
    fleet
        .terminate(a)
        .await
        .expect("terminating a gone member is fine");
    fleet
        .terminate("w-000000000000")
        .await
        .expect("terminating an unknown member is fine");
    eventually(fleet, &[b], "terminations of others leave a member alone").await;

    fleet.terminate(b).await.expect("terminate the other");
    eventually(fleet, &[], "after terminating both").await;
}
