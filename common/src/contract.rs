//! Contract suites: the behaviour every adapter of a port must show, whatever is behind it.
//!
//! Each suite takes a fresh, empty adapter and panics with a message naming the broken promise.
//! The local adapters run them in `common/local/tests/contract.rs`; cloud adapters run the same
//! functions against an emulator.

use std::time::Duration;

use chrono::Utc;

use crate::{
    error::Error,
    fleet::{Beat, DECISIONS_KEPT, DecisionRecord, WorkerState},
    ids::JobId,
    job::{Job, Refusal, Stage, Status},
    ports::{
        BlobStore, EventQueue, JobQuery, JobQueue, JobStore, KeyClaim, MAX_EVENT_BYTES, Update,
        WorkerRegistry, update_job,
    },
    spec::RenderSpec,
};

fn new_job() -> Job {
    Job::new(
        JobId::new(),
        RenderSpec::default(),
        vec!["jobs/x/inputs/000".into()],
        Utc::now(),
    )
}

/// The events queue: what is published is received whole, hidden from others while received,
/// received again when not acked within its visibility, and gone once acked; an empty queue
/// answers nothing after the wait; an event over [`MAX_EVENT_BYTES`] is refused.
pub async fn event_queue(queue: &dyn EventQueue) {
    queue.ready().await.expect("ready");
    let hidden = Duration::from_secs(3);
    let none = queue
        .receive(10, Duration::from_millis(300), hidden)
        .await
        .expect("receive");
    assert!(none.is_empty(), "a fresh queue holds nothing: {none:?}");
    let bodies: Vec<String> = (0..3)
        .map(|n| format!(r#"{{"id":"{}","n":{n},"text":"é ✓"}}"#, JobId::new()))
        .collect();
    for body in &bodies {
        queue.publish("job.succeeded", body).await.expect("publish");
    }
    let started = std::time::Instant::now();
    let mut received = Vec::new();
    while received.len() < bodies.len() && started.elapsed() < Duration::from_secs(2) {
        received.extend(
            queue
                .receive(10, Duration::from_millis(500), hidden)
                .await
                .expect("receive"),
        );
    }
    let mut got: Vec<_> = received.iter().map(|m| m.body.clone()).collect();
    got.sort();
    let mut want = bodies.clone();
    want.sort();
    assert_eq!(
        got, want,
        "every published body is received once, unchanged"
    );
    let again = queue
        .receive(10, Duration::from_millis(200), hidden)
        .await
        .expect("receive");
    assert!(
        again.is_empty() || started.elapsed() >= hidden,
        "received messages are hidden: {again:?}"
    );
    for m in &received[1..] {
        queue.ack(&m.receipt).await.expect("ack");
    }
    queue
        .ack(&received[1].receipt)
        .await
        .expect("a second ack is no error");
    // The one not acked comes back once its visibility ends, and only it.
    let back = queue
        .receive(10, Duration::from_secs(8), hidden)
        .await
        .expect("receive");
    assert_eq!(
        back.iter().map(|m| &m.body).collect::<Vec<_>>(),
        [&received[0].body],
        "a message not acked is received again after its visibility, and only it"
    );
    queue.ack(&back[0].receipt).await.expect("ack");
    let gone = queue
        .receive(10, Duration::from_secs(4), hidden)
        .await
        .expect("receive");
    assert!(gone.is_empty(), "acked messages are gone: {gone:?}");
    let huge = "x".repeat(MAX_EVENT_BYTES + 1);
    assert!(
        matches!(
            queue.publish("job.failed", &huge).await,
            Err(Error::Invalid(_))
        ),
        "an event over the limit is refused before it is sent"
    );
}

/// Create, read, compare-and-set, and the status machine through [`update_job`].
pub async fn job_store(store: &dyn JobStore) {
    let job = new_job();
    assert!(
        store.get(job.id).await.expect("get").is_none(),
        "an unknown id reads as None"
    );
    store.create(&job).await.expect("create");
    assert!(
        matches!(store.create(&job).await, Err(Error::Conflict(_))),
        "creating an existing id must be a Conflict"
    );
    let read = store
        .get(job.id)
        .await
        .expect("get")
        .expect("created job reads back");
    assert_eq!(read, job, "a job reads back exactly as written");

    let mut next = read.clone();
    next.progress = 0.25;
    let stored = store
        .replace(&next)
        .await
        .expect("replace at the current version");
    assert_eq!(
        stored.version,
        read.version + 1,
        "replace bumps the version"
    );
    assert!(
        matches!(store.replace(&next).await, Err(Error::Conflict(_))),
        "replace from a stale version must be a Conflict"
    );
    assert_eq!(store.get(job.id).await.expect("get"), Some(stored.clone()));

    let ttl = chrono::Duration::seconds(30);
    let claimed = match update_job(store, job.id, |j| j.claim("w1", Utc::now(), ttl))
        .await
        .expect("claim")
    {
        Update::Done(j) => j,
        Update::Refused(r, _) => panic!("a queued job must be claimable, refused: {r}"),
    };
    assert_eq!(claimed.status, Status::Running);
    match update_job(store, job.id, |j| j.claim("w2", Utc::now(), ttl))
        .await
        .expect("second claim")
    {
        Update::Refused(Refusal::Leased, current) => assert_eq!(current, claimed),
        other => panic!("a live lease must refuse a second claim, got {other:?}"),
    }
    match update_job(store, job.id, |j| {
        j.heartbeat("w1", Stage::Rendering, 0.5, Utc::now())
    })
    .await
    .expect("hb")
    {
        Update::Done(j) => assert_eq!((j.stage, j.progress), (Some(Stage::Rendering), 0.5)),
        other => panic!("the owner's heartbeat must land, got {other:?}"),
    }
    match update_job(store, job.id, |j| j.cancel(Utc::now()))
        .await
        .expect("cancel")
    {
        Update::Done(j) => assert_eq!(j.status, Status::Cancelled),
        other => panic!("a running job must be cancellable, got {other:?}"),
    }
    let final_ = store.get(job.id).await.expect("get").expect("exists");
    assert!(final_.status.is_terminal());
    assert!(
        update_job(store, JobId::new(), |j| j.cancel(Utc::now()))
            .await
            .is_err(),
        "updating an unknown job must fail"
    );
    assert!(
        store.delete(job.id).await.expect("delete"),
        "deleting an existing job says so"
    );
    assert!(
        store.get(job.id).await.expect("get").is_none(),
        "a deleted job is gone"
    );
    assert!(
        !store.delete(job.id).await.expect("delete again"),
        "deleting twice is harmless"
    );
}

/// A tenant's jobs listed newest first, a page at a time, by status, and counted while active;
/// other tenants' jobs never show. A status change moves a job between the status lists.
pub async fn job_listing(store: &dyn JobStore) {
    let tenant = format!("t-{}", JobId::new());
    let other = format!("u-{}", JobId::new());
    let mut ids = Vec::new();
    for owner in [&tenant, &tenant, &other, &tenant] {
        let job = Job {
            tenant: owner.clone(),
            ..new_job()
        };
        store.create(&job).await.expect("create");
        if *owner == tenant {
            ids.push(job.id);
        }
    }
    ids.reverse(); // newest first
    let query = |status, before, limit| JobQuery {
        tenant: tenant.clone(),
        status,
        before,
        limit,
    };
    let listed = |jobs: Vec<Job>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(
        listed(store.list(&query(None, None, 10)).await.expect("list")),
        ids,
        "a tenant's jobs, newest first, and no other tenant's"
    );
    let first = listed(store.list(&query(None, None, 2)).await.expect("page 1"));
    assert_eq!(first, ids[..2], "a page holds at most `limit` jobs");
    let rest = listed(
        store
            .list(&query(None, Some(first[1]), 2))
            .await
            .expect("page 2"),
    );
    assert_eq!(
        rest,
        ids[2..],
        "the next page starts after the last id seen"
    );

    let ttl = chrono::Duration::seconds(30);
    update_job(store, ids[0], |j| j.claim("w", Utc::now(), ttl))
        .await
        .expect("claim");
    update_job(store, ids[1], |j| j.cancel(Utc::now()))
        .await
        .expect("cancel");
    for (status, expected) in [
        (Status::Running, vec![ids[0]]),
        (Status::Cancelled, vec![ids[1]]),
        (Status::Queued, vec![ids[2]]),
        (Status::Failed, vec![]),
    ] {
        assert_eq!(
            listed(
                store
                    .list(&query(Some(status), None, 10))
                    .await
                    .expect("list")
            ),
            expected,
            "the {status:?} jobs"
        );
    }
    assert_eq!(store.count_active(&tenant).await.expect("count"), 2);
    assert_eq!(store.count_active(&other).await.expect("count"), 1);
    assert_eq!(store.count_active("nobody").await.expect("count"), 0);
    update_job(store, ids[0], |j| {
        j.fail(
            "w",
            crate::job::JobError::new(crate::ErrorCode::InternalError, "x"),
            Utc::now(),
        )
    })
    .await
    .expect("fail");
    assert!(
        store
            .list(&query(Some(Status::Running), None, 10))
            .await
            .expect("list")
            .is_empty(),
        "a job leaves the list of its old status"
    );
    assert_eq!(store.count_active(&tenant).await.expect("count"), 1);
}

/// Due announcements: a job that ends with a `callback_url` is due at once, oldest first; one
/// taken is not due until its lease ends; one delivered never again; a job without a callback
/// never, unless its end is published on the events queue.
pub async fn due_announcements(store: &dyn JobStore) {
    use crate::webhook::{Outcome, Schedule, Take};
    let lease = Duration::from_secs(60);
    let ended = |callback: bool, seconds_ago: i64| {
        let mut job = new_job();
        job.options.callback_url = callback.then(|| "https://example.com/hook".to_owned());
        job.cancel(Utc::now() - chrono::Duration::seconds(seconds_ago))
            .expect("cancel");
        job
    };
    let older = ended(true, 20);
    let newer = ended(true, 10);
    let silent = ended(false, 30);
    let mut queued = new_job();
    queued.options.callback_url = Some("https://example.com/hook".into());
    let mut published = new_job();
    published.publish_event = true;
    published
        .cancel(Utc::now() - chrono::Duration::seconds(15))
        .expect("cancel");
    for job in [&newer, &silent, &older, &queued, &published] {
        store.create(job).await.expect("create");
    }
    let ours = |ids: Vec<JobId>| {
        ids.into_iter()
            .filter(|id| [older.id, newer.id, silent.id, queued.id].contains(id))
            .collect::<Vec<_>>()
    };
    let now = Utc::now();
    let all = store.due_announcements(now, 1000).await.expect("due");
    let position = |id: JobId| all.iter().position(|d| *d == id);
    assert!(
        position(older.id) < position(published.id) && position(published.id) < position(newer.id),
        "an ended job whose event is published is due in its turn, without a callback: {all:?}"
    );
    update_job(store, published.id, |j| {
        if let Some(e) = j.queue_event.as_mut() {
            e.record(
                now,
                1,
                Outcome::Delivered { status: None },
                &Schedule::default(),
                0.0,
                now,
            );
        }
        Ok(())
    })
    .await
    .expect("record the event");
    assert_eq!(
        ours(store.due_announcements(now, 1000).await.expect("due")),
        [older.id, newer.id],
        "the ended jobs with a callback, oldest due first"
    );
    match update_job(store, older.id, |j| {
        match j
            .webhook
            .as_mut()
            .map(|h| h.take(now, lease, &Schedule::default()))
        {
            Some(Take::Taken) => Ok(()),
            _ => Err(Refusal::NotDue),
        }
    })
    .await
    .expect("take")
    {
        Update::Done(j) => assert!(j.webhook.is_some_and(|h| h.due_at().is_some())),
        Update::Refused(r, _) => panic!("a due webhook could not be taken: {r}"),
    }
    assert_eq!(
        ours(store.due_announcements(now, 1000).await.expect("due")),
        [newer.id],
        "a taken webhook is not due for others"
    );
    let after_lease = now + chrono::Duration::seconds(61);
    assert_eq!(
        ours(
            store
                .due_announcements(after_lease, 1000)
                .await
                .expect("due")
        ),
        [newer.id, older.id],
        "a taken webhook whose deliverer went quiet is due again after the lease"
    );
    update_job(store, newer.id, |j| {
        if let Some(h) = j.webhook.as_mut() {
            h.record(
                now,
                1,
                Outcome::Delivered { status: Some(200) },
                &Schedule::default(),
                0.0,
                now,
            );
        }
        Ok(())
    })
    .await
    .expect("record");
    let tomorrow = now + chrono::Duration::days(1);
    assert_eq!(
        ours(store.due_announcements(tomorrow, 1000).await.expect("due")),
        [older.id],
        "a delivered webhook is never due again"
    );
    let first = store.due_announcements(tomorrow, 1).await.expect("due");
    assert_eq!(first.len(), 1, "at most `limit`");
}

/// Idempotency keys: the first claim takes a key, a second gets the first's claim back; keys are
/// per tenant; a replace moves a key only from the claim it names; a release frees it only for
/// its own job.
pub async fn idempotency_keys(store: &dyn JobStore) {
    let tenant = format!("t-{}", JobId::new());
    let claim = |fingerprint: &str| KeyClaim {
        job: JobId::new(),
        fingerprint: fingerprint.into(),
    };
    let (first, second) = (claim("f1"), claim("f2"));
    assert_eq!(
        store.claim_key(&tenant, "k", &first).await.expect("claim"),
        None
    );
    assert_eq!(
        store
            .claim_key(&tenant, "k", &second)
            .await
            .expect("claim again"),
        Some(first.clone()),
        "a taken key answers with the claim that holds it"
    );
    assert_eq!(
        store
            .claim_key("another", "k", &second)
            .await
            .expect("claim"),
        None,
        "keys are per tenant"
    );
    assert!(
        !store
            .replace_key(&tenant, "k", &second, &second)
            .await
            .expect("replace"),
        "a replace from a claim the key does not hold changes nothing"
    );
    assert!(
        store
            .replace_key(&tenant, "k", &first, &second)
            .await
            .expect("replace")
    );
    store
        .release_key(&tenant, "k", first.job)
        .await
        .expect("release");
    assert_eq!(
        store.claim_key(&tenant, "k", &first).await.expect("claim"),
        Some(second.clone()),
        "a release for another job leaves the key"
    );
    store
        .release_key(&tenant, "k", second.job)
        .await
        .expect("release");
    assert_eq!(
        store.claim_key(&tenant, "k", &first).await.expect("claim"),
        None
    );
}

/// Concurrent writers: of racing replaces from one version, and of racing claims, exactly one
/// wins. `a` and `b` are two handles on the same storage that share nothing in the process (two
/// connections, two clients), as two processes would have; the racers alternate between them.
pub async fn job_store_races(a: std::sync::Arc<dyn JobStore>, b: std::sync::Arc<dyn JobStore>) {
    let stores = [a, b];
    let job = new_job();
    stores[0].create(&job).await.expect("create");
    assert_eq!(
        stores[1].get(job.id).await.expect("get").as_ref(),
        Some(&job),
        "the two handles must reach the same storage"
    );
    const RACERS: usize = 8;

    // Every racer reads the same version, then all write it back at once: compare-and-set must
    // let exactly one through, whichever handle it came from.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for r in 0..RACERS {
        let store = stores[r % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut read = store.get(job.id).await.expect("get").expect("exists");
            read.progress = 0.01 * (r as f64 + 1.0);
            barrier.wait().await;
            match store.replace(&read).await {
                Ok(_) => true,
                Err(Error::Conflict(_)) => false,
                Err(e) => panic!("a losing replace must be a Conflict, got {e}"),
            }
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.expect("task"));
    }
    assert_eq!(
        wins, 1,
        "exactly one of {RACERS} replaces from one version must win"
    );
    let stored = stores[1].get(job.id).await.expect("get").expect("exists");
    assert_eq!(stored.version, job.version + 1, "one write landed");

    // Whole claims through `update_job` (read, change, write, retry on conflict).
    let ttl = chrono::Duration::seconds(30);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for w in 0..RACERS {
        let store = stores[w % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let worker = format!("w{w}");
            barrier.wait().await;
            matches!(
                update_job(store.as_ref(), job.id, |j| j.claim(
                    &worker,
                    Utc::now(),
                    ttl
                ))
                .await,
                Ok(Update::Done(_))
            )
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.expect("task"));
    }
    assert_eq!(wins, 1, "exactly one of {RACERS} racing claims must win");
    for store in &stores {
        let stored = store.get(job.id).await.expect("get").expect("exists");
        assert_eq!(stored.attempts, 1, "the losers must not have written");
        assert_eq!(stored.version, job.version + 2, "one claim landed");
    }
}

/// The delivery order a queue promises for messages waiting together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Received in the order sent (the SQLite queue).
    Fifo,
    /// Any order (SQS standard queues order on a best-effort basis only).
    BestEffort,
}

/// Send, long-poll, visibility, receipts, receive counts, extend, ack, depth, dead-lettering and
/// the delivery `order` the queue promises. `max_receives` is the queue's configured receive limit
/// (at least 2): a message already received that many times is dead-lettered, not delivered.
pub async fn job_queue(queue: &dyn JobQueue, max_receives: u32, order: Order) {
    assert!(
        max_receives >= 2,
        "the suite needs a receive limit of at least 2"
    );
    let short = Duration::from_millis(1200);
    let vis = Duration::from_secs(1);

    let started = std::time::Instant::now();
    assert!(
        queue.receive(short, vis).await.expect("receive").is_none(),
        "an empty queue yields None"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "receive must long-poll for the wait given"
    );

    let a = JobId::new();
    queue.send(a).await.expect("send");
    let d1 = queue
        .receive(short, vis)
        .await
        .expect("receive")
        .expect("a sent message arrives");
    assert_eq!((d1.job_id, d1.receive_count), (a, 1));
    assert_eq!(
        queue.depth().await.expect("depth").in_flight,
        1,
        "a received message is in flight"
    );
    assert!(
        queue
            .receive(Duration::ZERO, vis)
            .await
            .expect("receive")
            .is_none(),
        "in flight means invisible"
    );

    // After the visibility timeout the message comes back with a new receipt and a higher count.
    let d2 = queue
        .receive(Duration::from_secs(3), vis)
        .await
        .expect("receive")
        .expect("redelivered");
    assert_eq!((d2.job_id, d2.receive_count), (a, 2));
    assert_ne!(d1.receipt, d2.receipt, "each receive has its own receipt");

    // Extending keeps it hidden past the original timeout.
    queue
        .extend(&d2.receipt, Duration::from_secs(4))
        .await
        .expect("extend");
    assert!(
        queue
            .receive(Duration::from_millis(1500), vis)
            .await
            .expect("receive")
            .is_none(),
        "an extended message stays hidden"
    );
    queue.ack(&d2.receipt).await.expect("ack");
    let depth = queue.depth().await.expect("depth");
    assert_eq!(
        (depth.visible, depth.in_flight),
        (0, 0),
        "an acked message is gone"
    );

    // A message received `max_receives` times is dead-lettered instead of delivered again.
    let b = JobId::new();
    queue.send(b).await.expect("send");
    for n in 1..=max_receives {
        let d = queue
            .receive(Duration::from_secs(3), vis)
            .await
            .expect("receive")
            .expect("delivered");
        assert_eq!((d.job_id, d.receive_count), (b, n));
    }
    assert!(
        queue
            .receive(Duration::from_millis(2500), vis)
            .await
            .expect("receive")
            .is_none(),
        "after {max_receives} receives the message must not be delivered again"
    );
    assert_eq!(
        queue.depth().await.expect("depth").dead,
        1,
        "it is in the dead-letter queue"
    );

    // A fresh backlog: visible depth counts it, and every message is delivered exactly once, in
    // the order the queue promises. The ids are sent in reverse of their creation (UUIDv7 ids sort
    // by creation), so a queue that orders by id, or a check that sorts, cannot pass for FIFO.
    let mut backlog: Vec<JobId> = (0..5).map(|_| JobId::new()).collect();
    backlog.reverse();
    for &id in &backlog {
        queue.send(id).await.expect("send");
    }
    assert_eq!(
        queue.depth().await.expect("depth").visible,
        backlog.len() as u64,
        "every message sent and not yet received is visible"
    );
    let mut got = vec![];
    for _ in 0..backlog.len() {
        let d = queue
            .receive(short, vis)
            .await
            .expect("receive")
            .expect("delivered");
        queue.ack(&d.receipt).await.expect("ack");
        got.push(d.job_id);
    }
    match order {
        Order::Fifo => assert_eq!(
            got, backlog,
            "a backlog is received in the order it was sent"
        ),
        Order::BestEffort => {
            let mut sorted = got.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), backlog.len(), "no message twice: {got:?}");
            assert!(
                backlog.iter().all(|id| got.contains(id)),
                "every message of the backlog is delivered: sent {backlog:?}, got {got:?}"
            );
        }
    }
    assert!(
        queue
            .receive(Duration::ZERO, vis)
            .await
            .expect("receive")
            .is_none(),
        "an acked backlog leaves nothing behind"
    );

    // A withdrawn message is never delivered; a queue that cannot withdraw delivers it as usual.
    let c = JobId::new();
    queue.send(c).await.expect("send");
    let withdrawn = queue.withdraw(c).await.expect("withdraw");
    let after = queue.receive(short, vis).await.expect("receive");
    if withdrawn {
        assert!(after.is_none(), "a withdrawn message was delivered");
    } else {
        let d = after.expect("a message the queue kept is delivered");
        assert_eq!(d.job_id, c);
        queue.ack(&d.receipt).await.expect("ack");
    }
    assert!(
        !queue.withdraw(JobId::new()).await.expect("withdraw"),
        "nothing to withdraw for an id never sent"
    );
}

/// Put, get, size, overwrite, delete by prefix and expiring URLs.
pub async fn blob_store(store: &dyn BlobStore) {
    let dir = tempfile_dir();
    let src = dir.join("src.bin");
    std::fs::write(&src, b"hello minimoto").expect("write source");
    let prefix = format!("contract/{}", JobId::new());
    let key = format!("{prefix}/inputs/000.jpg");

    assert_eq!(
        store.size(&key).await.expect("size"),
        None,
        "a missing blob has no size"
    );
    assert_eq!(
        store.put_file(&key, &src, "image/jpeg").await.expect("put"),
        14
    );
    assert_eq!(store.size(&key).await.expect("size"), Some(14));
    let out = dir.join("out.bin");
    assert_eq!(store.get_to_file(&key, &out).await.expect("get"), 14);
    assert_eq!(std::fs::read(&out).expect("read back"), b"hello minimoto");

    std::fs::write(&src, b"v2").expect("write source");
    store
        .put_file(&key, &src, "image/jpeg")
        .await
        .expect("overwrite");
    assert_eq!(
        store.size(&key).await.expect("size"),
        Some(2),
        "a put replaces the object"
    );

    let missing = format!("{prefix}/nope");
    assert!(
        matches!(
            store.get_to_file(&missing, &out).await,
            Err(Error::NotFound(_))
        ),
        "getting a missing blob is NotFound"
    );

    let url = store
        .url(&key, Duration::from_secs(600))
        .await
        .expect("url");
    assert!(
        url.url.starts_with("http"),
        "a URL is absolute: {}",
        url.url
    );
    let left = (url.expires_at - Utc::now()).num_seconds();
    assert!(
        (590..=600).contains(&left),
        "the URL expires after the ttl given, not {left} s"
    );

    store
        .put_file(&format!("{prefix}/outputs/video.mp4"), &src, "video/mp4")
        .await
        .expect("put");
    let other = format!("{prefix}-other/keep");
    store
        .put_file(&other, &src, "text/plain")
        .await
        .expect("put");
    assert_eq!(
        store
            .delete_prefix(&format!("{prefix}/"))
            .await
            .expect("delete"),
        2
    );
    assert_eq!(store.size(&key).await.expect("size"), None, "deleted");
    assert_eq!(
        store.size(&other).await.expect("size"),
        Some(2),
        "a sibling prefix is untouched"
    );
    assert_eq!(
        store
            .delete_prefix(&format!("{prefix}/"))
            .await
            .expect("delete again"),
        0
    );

    // Folders: the names under a prefix, sorted, paged; loose objects are not folders.
    let root = format!("contract/{}/", JobId::new());
    for key in ["b/1", "a/1", "a/2", "c/x/1", "loose"] {
        store
            .put_file(&format!("{root}{key}"), &src, "text/plain")
            .await
            .expect("put");
    }
    let folders = |after: Option<&'static str>, limit| {
        let root = root.clone();
        async move { store.folders(&root, after, limit).await.expect("folders") }
    };
    assert_eq!(
        folders(None, 10).await,
        ["a", "b", "c"],
        "sorted, each once"
    );
    assert_eq!(
        folders(Some("a"), 10).await,
        ["b", "c"],
        "after `start_after`"
    );
    assert_eq!(folders(None, 2).await, ["a", "b"], "at most `limit`");
    assert_eq!(folders(Some("c"), 10).await, Vec::<String>::new());
    assert!(
        store
            .folders(&format!("contract/{}/", JobId::new()), None, 10)
            .await
            .expect("folders of nothing")
            .is_empty()
    );
    assert_eq!(
        store
            .remove_debris(Duration::ZERO)
            .await
            .expect("remove debris"),
        0,
        "whole objects are never debris"
    );
    assert_eq!(
        store.size(&format!("{root}a/1")).await.expect("size"),
        Some(2)
    );
    store.delete_prefix(&root).await.expect("clean up");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A job id made `ago` in the past (ids carry their creation time).
fn id_made(ago: Duration) -> JobId {
    let t = std::time::SystemTime::now() - ago;
    let since = t
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch");
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, since.as_secs(), since.subsec_nanos());
    uuid::Uuid::new_v7(ts)
        .to_string()
        .parse()
        .expect("a job id")
}

/// The reclaimer over a fresh store pair (it sweeps the real `inputs/` and `outputs/`, so the
/// blob store must be this suite's alone): it removes exactly the folders of old ids without a
/// record, keeps owned, young and foreign folders, and a second sweep finds nothing.
pub async fn reclaimer(blobs: &dyn BlobStore, jobs: &dyn JobStore) {
    use crate::{layout, reclaim::Reclaimer};
    let dir = tempfile_dir();
    let src = dir.join("photo");
    std::fs::write(&src, b"jpeg").expect("write");
    let hour = Duration::from_secs(3600);
    let (owned, orphan, young) = (id_made(2 * hour), id_made(2 * hour), JobId::new());
    for id in [owned, orphan, young] {
        for key in [
            layout::input(id, 0, "jpeg"),
            layout::video(id, crate::spec::Format::Mp4),
        ] {
            blobs.put_file(&key, &src, "image/jpeg").await.expect("put");
        }
    }
    let foreign = format!("{}not-a-job/keep", layout::INPUTS);
    blobs
        .put_file(&foreign, &src, "text/plain")
        .await
        .expect("put");
    let job = Job::new(
        owned,
        RenderSpec::default(),
        vec![layout::input(owned, 0, "jpeg")],
        Utc::now(),
    );
    jobs.create(&job).await.expect("create");

    let mut reclaimer = Reclaimer::new(blobs, jobs, hour);
    let swept = reclaimer.sweep().await.expect("sweep");
    assert_eq!(
        (swept.orphans, swept.objects),
        (2, 2),
        "the photos and the video of the old id without a record: {swept:?}"
    );
    for (id, kept) in [(owned, true), (orphan, false), (young, true)] {
        for key in [
            layout::input(id, 0, "jpeg"),
            layout::video(id, crate::spec::Format::Mp4),
        ] {
            assert_eq!(
                blobs.size(&key).await.expect("size").is_some(),
                kept,
                "{key} kept: {kept}"
            );
        }
    }
    assert!(
        blobs.size(&foreign).await.expect("size").is_some(),
        "not a job's folder"
    );
    let again = reclaimer.sweep().await.expect("sweep again");
    assert_eq!((again.orphans, again.objects), (0, 0), "{again:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "minimoto-contract-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn beat(id: &str, state: WorkerState) -> Beat {
    let now = Utc::now();
    Beat {
        id: id.into(),
        host: "host-a".into(),
        instance: Some("i-0123456789abcdef0".into()),
        version: "0.1.0".into(),
        state,
        job: None,
        started_at: now,
        idle_since: None,
        jobs_done: 0,
        busy_seconds: 0.0,
        at: now,
    }
}

/// Beats create and update records, a drain request survives later beats, removal forgets, and
/// only the last [`DECISIONS_KEPT`] decisions are kept, newest first.
pub async fn worker_registry(registry: &dyn WorkerRegistry) {
    assert!(
        registry.list().await.expect("list").is_empty(),
        "a fresh registry lists no workers"
    );

    let first = beat("w-1", WorkerState::Booting);
    let directive = registry.beat(&first).await.expect("first beat");
    assert!(!directive.drain, "a new worker is not asked to drain");
    let mut busy = beat("w-1", WorkerState::Busy);
    busy.job = Some(JobId::new());
    busy.jobs_done = 3;
    busy.busy_seconds = 41.5;
    busy.idle_since = Some(first.at);
    registry.beat(&busy).await.expect("second beat");
    registry
        .beat(&beat("w-2", WorkerState::Idle))
        .await
        .expect("beat of another worker");

    let mut listed = registry.list().await.expect("list");
    listed.sort_by(|a, b| a.beat.id.cmp(&b.beat.id));
    assert_eq!(listed.len(), 2, "two workers beat, two are listed");
    let w1 = &listed[0];
    assert_eq!(w1.beat.state, WorkerState::Busy, "the last beat wins");
    assert_eq!(w1.beat.job, busy.job, "the job in hand is kept");
    assert_eq!(w1.beat.jobs_done, 3);
    assert!((w1.beat.busy_seconds - 41.5).abs() < 1e-9);
    assert_eq!(w1.beat.instance.as_deref(), Some("i-0123456789abcdef0"));
    assert_eq!(
        w1.beat.at.timestamp_millis(),
        busy.at.timestamp_millis(),
        "last seen is the beat's time, to the millisecond"
    );
    assert_eq!(
        w1.beat.idle_since.map(|t| t.timestamp_millis()),
        busy.idle_since.map(|t| t.timestamp_millis())
    );
    assert!(!w1.drain_requested);

    assert!(
        registry.request_drain("w-1").await.expect("drain"),
        "draining a registered worker reports it"
    );
    assert!(
        !registry
            .request_drain("nobody")
            .await
            .expect("drain unknown"),
        "draining an unknown worker reports that it is unknown"
    );
    assert!(
        registry
            .list()
            .await
            .expect("list")
            .iter()
            .all(|w| w.beat.id != "nobody"),
        "a drain request creates no record"
    );
    let directive = registry
        .beat(&beat("w-1", WorkerState::Busy))
        .await
        .expect("beat after the drain request");
    assert!(
        directive.drain,
        "the worker learns of the drain on its next beat"
    );
    let directive = registry
        .beat(&beat("w-1", WorkerState::Draining))
        .await
        .expect("another beat");
    assert!(directive.drain, "a beat never clears a drain request");
    let other = registry
        .beat(&beat("w-2", WorkerState::Idle))
        .await
        .expect("beat of the other worker");
    assert!(!other.drain, "a drain request is for one worker only");

    registry.remove("w-1").await.expect("remove");
    registry
        .remove("w-1")
        .await
        .expect("removing twice is fine");
    let listed = registry.list().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].beat.id, "w-2");
    let directive = registry
        .beat(&beat("w-1", WorkerState::Idle))
        .await
        .expect("a beat after removal");
    assert!(
        !directive.drain,
        "a removed worker that beats again starts afresh"
    );
    registry.remove("w-1").await.expect("remove");

    assert!(registry.decisions().await.expect("decisions").is_empty());
    let start = Utc::now();
    for n in 0..(DECISIONS_KEPT + 5) {
        registry
            .record_decision(&DecisionRecord {
                at: start + chrono::Duration::milliseconds(n as i64),
                decision: serde_json::json!({ "n": n, "reason": "table test" }),
            })
            .await
            .expect("record a decision");
    }
    let kept = registry.decisions().await.expect("decisions");
    let numbers: Vec<u64> = kept
        .iter()
        .map(|d| d.decision["n"].as_u64().expect("n"))
        .collect();
    let expected: Vec<u64> = (5..(DECISIONS_KEPT as u64 + 5)).rev().collect();
    assert_eq!(
        numbers, expected,
        "the last decisions are kept, newest first"
    );
}
