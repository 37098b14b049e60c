//! A deployment on the AWS backend, against moto: an API-only process and separate worker
//! processes sharing one stack, as on EC2. Workers are killed with `kill -9` mid-render, the
//! emulator is stopped under a running API, and stray messages are put on the queue.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use crate::{
    aws::{minimoto, refs},
    helpers::*,
    moto::{Moto, unique},
};

/// The environment of one stack on `moto`: every name derives from the stack.
fn stack_env(moto: &Moto, stack: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("MINIMOTO_BACKEND", "aws".into()),
        ("MINIMOTO_STACK", stack.into()),
    ]
}

/// A `minimoto worker` process with its own data dir, killed on drop; its log is kept.
struct WorkerProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl WorkerProcess {
    fn spawn(dir: &Path, name: &str, env: &[(&'static str, String)], extra: &[&str]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_minimoto"))
            .arg("worker")
            .arg("--data-dir")
            .arg(dir.join(name))
            .args(extra)
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn minimoto worker");
        Self {
            child: Some(child),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill_hard(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill -9");
            c.wait().expect("reap");
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill_hard();
        if std::thread::panicking() {
            eprintln!("---- {} ----\n{}", self.log.display(), self.log());
        }
    }
}

/// Log lines of `text` that mention `needle` and `job`.
fn count(text: &str, needle: &str, job: &str) -> usize {
    text.lines()
        .filter(|l| l.contains(needle) && l.contains(job))
        .count()
}

/// Waits until `check` holds, or panics with `what` after `timeout`.
async fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sqs(moto: &Moto) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&moto.sdk_config().await)
}

/// Messages visible and in flight in the named queue.
async fn queue_depth(client: &aws_sdk_sqs::Client, name: &str) -> (u64, u64) {
    let url = client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .expect("queue url")
        .queue_url
        .expect("url");
    let attrs = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    let n = |a: QueueAttributeName| attrs.get(&a).and_then(|v| v.parse().ok()).expect("a count");
    (
        n(QueueAttributeName::ApproximateNumberOfMessages),
        n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// 4 photos × 8 s at 640×480, 25 fps: 800 frames, seconds of rendering, so the kill lands
/// mid-render even on a fast machine (progress is published once a heartbeat, every second here).
const LONG: &str = r#"{"width": 640, "height": 480, "fps": 25, "seconds_per_image": 8.0}"#;

#[tokio::test]
async fn two_worker_processes_finish_every_job_once_when_one_is_killed_mid_render() {
    let moto = Moto::start();
    let stack = unique("e2e");
    let env = stack_env(&moto, &stack);
    let (ok, text) = minimoto(&["setup"], &env);
    assert!(ok, "{text}");

    let tmp = tempfile::tempdir().expect("tempdir");
    let api = App::spawn_with_env(&tmp.path().join("api"), &["--workers", "0"], &refs(&env));
    let fast = [
        "--visibility-timeout-seconds",
        "4",
        "--receive-wait-seconds",
        "1",
    ];
    let mut workers = [
        WorkerProcess::spawn(tmp.path(), "w1", &env, &fast),
        WorkerProcess::spawn(tmp.path(), "w2", &env, &fast),
    ];

    let mut ids = Vec::new();
    for seed in 0..3u8 {
        let images: Vec<(String, Vec<u8>)> = (0..4)
            .map(|i| (format!("{seed}-{i}.jpg"), jpeg(800, 600, seed * 4 + i)))
            .collect();
        let images: Vec<(&str, Vec<u8>)> = images
            .iter()
            .map(|(n, b)| (n.as_str(), b.clone()))
            .collect();
        let (status, job, _) = submit(&api, form(&images, Some(LONG))).await;
        assert_eq!(status, 202, "{job}");
        ids.push(job["id"].as_str().expect("id").to_owned());
    }

    // Kill whichever worker claims a job first, while it renders.
    let mut victim = None;
    let start = Instant::now();
    while victim.is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no worker claimed a job"
        );
        victim = workers
            .iter()
            .position(|w| ids.iter().any(|id| count(&w.log(), "job claimed", id) > 0));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let victim = victim.expect("a victim");
    let claimed = ids
        .iter()
        .find(|id| count(&workers[victim].log(), "job claimed", id) > 0)
        .expect("the claimed job")
        .clone();
    let at_kill = poll_until(&api, &claimed, Duration::from_secs(30), |j| {
        j["stage"] == "rendering" || finished(j)
    })
    .await;
    workers[victim].kill_hard();
    assert_eq!(at_kill["status"], "running", "killed mid-render: {at_kill}");
    let survivor = &workers[1 - victim];

    for id in &ids {
        let job = poll_until(&api, id, Duration::from_secs(240), finished).await;
        assert_eq!(job["status"], "succeeded", "{job}\n{}", survivor.log());
        let video = tmp.path().join(format!("{id}.mp4"));
        download(job["outputs"]["video_url"].as_str().expect("url"), &video).await;
        assert_eq!(ffprobe(&video)["streams"][0]["nb_read_frames"], "800");
    }
    let logs: String = workers.iter().map(WorkerProcess::log).collect();
    for id in &ids {
        assert_eq!(
            count(&logs, "job succeeded", id),
            1,
            "job {id} succeeded exactly once:\n{logs}"
        );
    }

    // Stray messages must not stop the fleet: a body that is not a job id, and the id of a job
    // that does not exist (old enough that its record cannot still be on its way).
    let client = sqs(&moto).await;
    let queue = format!("{stack}-jobs");
    let url = client
        .get_queue_url()
        .queue_name(&queue)
        .send()
        .await
        .expect("url")
        .queue_url
        .expect("url");
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    let since = an_hour_ago
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    let ghost = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        since.as_secs(),
        0,
    ));
    for body in ["this is not a job id".to_owned(), ghost.to_string()] {
        client
            .send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .expect("send a stray message");
    }
    wait_for(
        "the survivor drops both stray messages",
        Duration::from_secs(30),
        || {
            let log = survivor.log();
            log.contains("not a job id") && count(&log, "unknown job", &ghost.to_string()) > 0
        },
    )
    .await;
    // … and still renders.
    let (status, job, _) = submit(
        &api,
        form(&[("after.jpg", jpeg(320, 240, 9))], Some(crate::SMALL)),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let after = job["id"].as_str().expect("id").to_owned();
    let job = poll_until(&api, &after, Duration::from_secs(60), finished).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    assert_eq!(queue_depth(&client, &queue).await, (0, 0), "queue empty");
    assert_eq!(
        queue_depth(&client, &format!("{queue}-dlq")).await,
        (0, 0),
        "nothing dead-lettered"
    );
    drop(api);
    drop(workers);
    let (ok, text) = minimoto(&["cleanup"], &env);
    assert!(ok, "{text}");
    let buckets = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto.sdk_config().await)
            .force_path_style(true)
            .build(),
    )
    .list_buckets()
    .send()
    .await
    .expect("list buckets");
    assert!(
        buckets
            .buckets()
            .iter()
            .all(|b| !b.name().unwrap_or_default().starts_with(&stack)),
        "cleanup removed the stack's bucket"
    );
    let queues = client.list_queues().send().await.expect("list queues");
    assert!(
        queues.queue_urls().iter().all(|u| !u.contains(&stack)),
        "cleanup removed the stack's queues: {:?}",
        queues.queue_urls()
    );
}

/// Status, `Retry-After` and JSON body of an answer.
async fn answer(res: reqwest::Response) -> (u16, Option<String>, Value) {
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let status = res.status().as_u16();
    (status, retry, res.json().await.expect("json"))
}

async fn post_status(app: &App) -> (u16, Option<String>, Value) {
    let res = reqwest::Client::new()
        .post(app.url("/v1/jobs"))
        .multipart(form(&[("a.jpg", jpeg(64, 48, 1))], None))
        .send()
        .await
        .expect("POST");
    answer(res).await
}

async fn get_status(url: &str) -> (u16, Option<String>, Value) {
    answer(reqwest::get(url).await.expect("GET")).await
}

#[tokio::test]
async fn an_outage_is_a_503_with_retry_after_and_the_same_api_recovers() {
    let mut moto = Moto::start();
    let env = stack_env(&moto, &unique("e2e"));
    let (ok, text) = minimoto(&["setup"], &env);
    assert!(ok, "{text}");
    let tmp = tempfile::tempdir().expect("tempdir");
    let api = App::spawn_with_env(&tmp.path().join("api"), &["--workers", "0"], &refs(&env));
    let (status, _, job) = post_status(&api).await;
    assert_eq!(status, 202, "{job}");
    let job_url = api.url(&format!("/v1/jobs/{}", job["id"].as_str().expect("id")));

    moto.stop();
    for (what, answer) in [
        ("POST /v1/jobs", {
            let t = Instant::now();
            (post_status(&api).await, t.elapsed())
        }),
        ("GET /v1/jobs/{id}", {
            let t = Instant::now();
            (get_status(&job_url).await, t.elapsed())
        }),
        ("GET /readyz", {
            let t = Instant::now();
            (get_status(&api.url("/readyz")).await, t.elapsed())
        }),
    ] {
        let ((status, retry, body), took) = answer;
        assert_eq!(status, 503, "{what}: {body}");
        assert!(retry.is_some(), "{what} says when to retry");
        assert!(
            took < Duration::from_secs(20),
            "{what} answered in {took:?}"
        );
        if what != "GET /readyz" {
            assert_eq!(body["code"], "backend-unavailable", "{what}: {body}");
        }
    }
    let (status, _) = get_json(&api.url("/healthz")).await;
    assert_eq!(status, 200, "liveness does not depend on the backend");

    // moto comes back empty: re-create the stack, and the same API process serves again.
    moto.restart();
    let (ok, text) = minimoto(&["setup"], &env);
    assert!(ok, "{text}");
    let (status, _, job) = post_status(&api).await;
    assert_eq!(status, 202, "{job}\n{}", api.log());
    let (status, _, ready) = get_status(&api.url("/readyz")).await;
    assert_eq!(status, 200, "{ready}");
}
