//! Webhooks through the API and its deliverer: a job's end is POSTed to its `callback_url`,
//! signed with the tenant's secret, retried with backoff until the receiver takes it, every
//! attempt on the job; destinations inside the network are refused at submit and after DNS.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{body::Bytes, extract::State, http::HeaderMap, routing::post};
use hmac::{Hmac, Mac};
use minimoto_api::{
    keys::{KeyFile, KeyRing},
    webhooks::Settings,
};
use minimoto_common::{codes::ErrorCode, job::JobError, limits::Limits, webhook::Schedule};
use serde_json::Value;
use sha2::Sha256;

use crate::{
    photos::{form, jpeg},
    support::{TestApi, end_as_worker, succeed_as_worker},
};

/// What the receiver was sent.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
}

/// A webhook receiver on a loopback port: answers each request with the next status of its
/// script (then 204), and keeps what it was sent.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

#[derive(Clone)]
struct Script {
    statuses: Arc<Mutex<VecDeque<u16>>>,
    got: Arc<Mutex<Vec<Received>>>,
}

async fn receive(
    State(script): State<Script>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::http::StatusCode {
    script.got.lock().expect("lock").push(Received {
        at: Instant::now(),
        headers,
        body,
    });
    let status = script
        .statuses
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(204);
    axum::http::StatusCode::from_u16(status).expect("status")
}

impl Receiver {
    async fn start(host: &str, statuses: &[u16]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let script = Script {
            statuses: Arc::new(Mutex::new(statuses.iter().copied().collect())),
            got: got.clone(),
        };
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(script);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{host}:{port}/hook"),
            got,
        }
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(
                started.elapsed() < within,
                "the receiver got {} requests, not {n}, within {within:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A keys file with no key (the server stays open: callers are the tenant `default`) and a
/// webhook secret for that tenant; the ring and the secret.
fn open_ring_with_secret(dir: &std::path::Path) -> (Arc<KeyRing>, String) {
    let path = dir.join("keys.json");
    let mut file = KeyFile::default();
    let secret = file.webhook_secret("default", false).expect("secret");
    file.save(&path).expect("save");
    (Arc::new(KeyRing::open(&path).expect("ring")), secret)
}

/// Fast retries, so a test sees several attempts.
fn quick(allow_private: bool) -> Settings {
    Settings {
        allow_private,
        schedule: Schedule {
            first_retry: Duration::from_millis(300),
            factor: 2.0,
            max_delay: Duration::from_secs(5),
            give_up_after: Duration::from_secs(60),
        },
        timeout: Duration::from_secs(5),
        poll: Duration::from_millis(50),
    }
}

async fn start_api(keys: Arc<KeyRing>, settings: Settings) -> TestApi {
    TestApi::start_tuned(
        Limits::default(),
        move |c| {
            c.keys = Some(keys);
            c.webhooks = settings;
        },
        |p| p,
    )
    .await
}

async fn submit(api: &TestApi, options: &str) -> (u16, Value) {
    let images = [("a.jpg", jpeg(64, 48, 1))];
    let res = reqwest::Client::new()
        .post(api.url("/v1/jobs"))
        .multipart(form(&images, Some(options)))
        .send()
        .await
        .expect("submit");
    (res.status().as_u16(), res.json().await.expect("json"))
}

/// Ends job `id` (a DELETE cancels a queued job); the answer's status.
async fn end(api: &TestApi, id: &str) -> u16 {
    reqwest::Client::new()
        .delete(api.url(&format!("/v1/jobs/{id}")))
        .send()
        .await
        .expect("delete")
        .status()
        .as_u16()
}

/// The job's `webhook` once it is in `state`; fails after `within`.
async fn webhook_when(api: &TestApi, id: &str, state: &str, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let view: Value = reqwest::get(api.url(&format!("/v1/jobs/{id}")))
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        if view["webhook"]["state"] == state {
            return view["webhook"].clone();
        }
        assert!(
            started.elapsed() < within,
            "the webhook is not {state} within {within:?}: {view}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The signature a receiver computes: HMAC-SHA256 over `<t>.<body>` with the secret.
fn expected_signature(secret: &str, header: &str, body: &[u8]) -> (i64, String) {
    let t: i64 = header
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no timestamp in {header}"));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    (
        t,
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes())),
    )
}

#[tokio::test]
async fn a_jobs_end_is_posted_signed_and_retried_until_the_receiver_takes_it() {
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let (ring, secret) = open_ring_with_secret(keys_dir.path());
    let api = start_api(ring, quick(true)).await;
    let receiver = Receiver::start("127.0.0.1", &[503, 500]).await;
    let (status, job) = submit(&api, &format!(r#"{{"callback_url": "{}"}}"#, receiver.url)).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["options"]["callback_url"], receiver.url.as_str());
    assert!(
        job.get("webhook").is_none(),
        "no webhook before the job ends: {job}"
    );
    let id = job["id"].as_str().expect("id").to_owned();
    // Deleting the queued job cancels it: its end.
    assert_eq!(end(&api, &id).await, 200);

    let got = receiver.wait_for(3, Duration::from_secs(20)).await;
    for (n, request) in got.iter().enumerate() {
        let header = request.headers["x-minimoto-signature"]
            .to_str()
            .expect("ascii");
        let (t, expected) = expected_signature(&secret, header, &request.body);
        assert_eq!(header, expected, "attempt {n}: the signature verifies");
        assert!(
            (chrono::Utc::now().timestamp() - t).abs() < 60,
            "a current timestamp"
        );
        assert_eq!(request.headers["x-minimoto-event"], "job.cancelled");
        assert_eq!(request.headers["x-minimoto-delivery"], id.as_str());
        assert_eq!(
            request.headers["x-minimoto-attempt"],
            (n + 1).to_string().as_str()
        );
        assert_eq!(request.headers["content-type"], "application/json");
        let body: Value = serde_json::from_slice(&request.body).expect("the job as JSON");
        assert_eq!(
            (body["id"].as_str(), body["status"].as_str()),
            (Some(id.as_str()), Some("cancelled"))
        );
    }
    // Backoff: 0.3 s ± 20 % after the first failure, 0.6 s ± 20 % after the second.
    let gaps: Vec<f64> = got
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64())
        .collect();
    // Lower bounds only: the response, the record and the poll add to each wait by load (the
    // schedule itself is the unit test's).
    assert!(
        gaps[0] >= 0.24 && gaps[1] >= 0.48,
        "the waits grow: {gaps:?}"
    );

    // The attempts are on the job, and it is not sent again.
    let hook = &webhook_when(&api, &id, "delivered", Duration::from_secs(2)).await;
    assert_eq!(hook["state"], "delivered", "{hook}");
    assert_eq!(hook["event"], "cancelled");
    assert_eq!(hook["attempt_count"], 3);
    let statuses: Vec<u64> = hook["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["status"].as_u64().expect("status"))
        .collect();
    assert_eq!(statuses, [503, 500, 204]);
    assert!(
        hook["attempts"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("503")),
        "{hook}"
    );
    assert!(hook.get("next_attempt_at").is_none(), "{hook}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.got().len(),
        3,
        "a delivered webhook is not sent again"
    );
}

#[tokio::test]
async fn a_webhook_is_given_up_when_its_schedule_ends() {
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let (ring, _) = open_ring_with_secret(keys_dir.path());
    let mut settings = quick(true);
    settings.schedule.give_up_after = Duration::from_millis(1500);
    let api = start_api(ring, settings).await;
    let receiver = Receiver::start("127.0.0.1", &[503; 100]).await;
    let (_, job) = submit(&api, &format!(r#"{{"callback_url": "{}"}}"#, receiver.url)).await;
    let id = job["id"].as_str().expect("id").to_owned();
    end(&api, &id).await;
    let hook = webhook_when(&api, &id, "failed", Duration::from_secs(20)).await;
    let count = hook["attempt_count"].as_u64().expect("count");
    // 0, 0.3, 0.9 s, then the last on the 1.5 s deadline (jitter may merge the last two).
    assert!((3..=5).contains(&count), "{hook}");
    assert_eq!(receiver.got().len() as u64, count);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        receiver.got().len() as u64,
        count,
        "no attempt after giving up"
    );
}

#[tokio::test]
async fn a_callback_inside_the_network_is_refused_at_submit_and_nothing_is_kept() {
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let (ring, _) = open_ring_with_secret(keys_dir.path());
    let api = start_api(ring, quick(false)).await;
    for (url, says) in [
        ("http://127.0.0.1:9/hook", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]:9/", "loopback"),
        ("http://localhost:9/", "a loopback name"),
        ("http://10.0.0.7/", "a private address"),
        ("file:///etc/passwd", "http or https"),
        ("https://u:p@example.com/", "credentials"),
    ] {
        let (status, problem) = submit(&api, &format!(r#"{{"callback_url": "{url}"}}"#)).await;
        assert_eq!(status, 422, "{url}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "callback_url", "{problem}");
        let message = problem["errors"][0]["message"].as_str().expect("message");
        assert!(message.contains(says), "{url}: {message}");
    }
    let long = format!("https://example.com/{}", "a".repeat(2100));
    let (status, problem) = submit(&api, &format!(r#"{{"callback_url": "{long}"}}"#)).await;
    assert_eq!(status, 422);
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("limit of 2048")),
        "{problem}"
    );
    let listed: Value = reqwest::get(api.url("/v1/jobs"))
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["jobs"].as_array().map(Vec::len), Some(0), "{listed}");
}

#[tokio::test]
async fn a_name_that_resolves_inside_the_network_is_refused_at_delivery() {
    // The machine's own name: not `localhost`, so accepted at submit, but it resolves to an
    // address of this machine or its network.
    let host = std::fs::read_to_string("/etc/hostname")
        .expect("/etc/hostname")
        .trim()
        .to_owned();
    let inside = tokio::net::lookup_host((host.as_str(), 0))
        .await
        .unwrap_or_else(|e| panic!("the machine's name {host} does not resolve: {e}"))
        .all(|a| minimoto_api::webhooks::destination::non_public(a.ip()).is_some());
    assert!(
        inside,
        "this test needs the machine's name ({host}) to resolve to a non-public address"
    );
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let (ring, _) = open_ring_with_secret(keys_dir.path());
    let api = start_api(ring, quick(false)).await;
    let receiver = Receiver::start(&host, &[]).await;
    let (status, job) = submit(&api, &format!(r#"{{"callback_url": "{}"}}"#, receiver.url)).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    end(&api, &id).await;
    let hook = webhook_when(&api, &id, "failed", Duration::from_secs(10)).await;
    assert_eq!(hook["attempt_count"], 1, "a refusal is final: {hook}");
    let error = hook["attempts"][0]["error"].as_str().expect("error");
    assert!(
        error.contains(&format!("{host} resolves to")) && error.contains("public addresses only"),
        "{error}"
    );
    assert!(receiver.got().is_empty(), "nothing reached the receiver");
}

#[tokio::test]
async fn a_tenant_without_a_webhook_secret_is_told_how_to_make_one() {
    let api = TestApi::start(Limits::default()).await;
    let (status, problem) = submit(&api, r#"{"callback_url": "https://example.com/hook"}"#).await;
    assert_eq!(status, 422, "{problem}");
    let message = problem["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("minimoto keys secret --tenant default"),
        "{message}"
    );
}

#[tokio::test]
async fn a_worker_ending_a_job_sends_its_outcome_with_download_links_or_its_error() {
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let (ring, _) = open_ring_with_secret(keys_dir.path());
    let api = start_api(ring, quick(true)).await;
    let receiver = Receiver::start("127.0.0.1", &[]).await;
    let options = format!(r#"{{"callback_url": "{}"}}"#, receiver.url);
    let (_, made) = submit(&api, &options).await;
    let (_, broken) = submit(&api, &options).await;
    let made = made["id"].as_str().expect("id").to_owned();
    let broken = broken["id"].as_str().expect("id").to_owned();
    succeed_as_worker(&api, &made).await;
    end_as_worker(&api, &broken, |job| {
        job.fail(
            "worker-1",
            JobError::new(ErrorCode::EncoderFailed, "ffmpeg exited with status 1"),
            chrono::Utc::now(),
        )
    })
    .await;

    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    let by_id = |id: &str| {
        let request = got
            .iter()
            .find(|r| r.headers["x-minimoto-delivery"] == id)
            .unwrap_or_else(|| panic!("no webhook for {id}"));
        let body: Value = serde_json::from_slice(&request.body).expect("json");
        (request.headers["x-minimoto-event"].clone(), body)
    };
    let (event, body) = by_id(&made);
    assert_eq!(event, "job.succeeded");
    assert_eq!(body["status"], "succeeded", "{body}");
    let video = body["outputs"]["video_url"]
        .as_str()
        .unwrap_or_else(|| panic!("a download link: {body}"));
    assert!(video.starts_with(&api.base), "{video}");
    let (event, body) = by_id(&broken);
    assert_eq!(event, "job.failed");
    assert_eq!(body["status"], "failed", "{body}");
    assert_eq!(body["error"]["code"], "encoder-failed", "{body}");
    assert!(body["outputs"].is_null(), "{body}");
}

#[tokio::test]
async fn deliverers_racing_for_the_same_webhooks_send_each_once() {
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let (ring, _) = open_ring_with_secret(keys_dir.path());
    let settings = quick(true);
    let api = start_api(ring.clone(), settings).await;
    // Three more API processes' deliverers on the same store: four in all.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    for _ in 0..3 {
        let deliverer = minimoto_api::webhooks::Deliverer::new(
            api.jobs.clone(),
            api.blobs.clone(),
            Some(ring.clone()),
            Duration::from_secs(600),
            settings,
        )
        .expect("deliverer");
        tokio::spawn(deliverer.run(shutdown.clone()));
    }
    let receiver = Receiver::start("127.0.0.1", &[]).await;
    let options = format!(r#"{{"callback_url": "{}"}}"#, receiver.url);
    let mut ids = Vec::new();
    for _ in 0..6 {
        let (status, job) = submit(&api, &options).await;
        assert_eq!(status, 202, "{job}");
        ids.push(job["id"].as_str().expect("id").to_owned());
    }
    for id in &ids {
        assert_eq!(end(&api, id).await, 200);
    }
    receiver.wait_for(ids.len(), Duration::from_secs(10)).await;
    for id in &ids {
        webhook_when(&api, id, "delivered", Duration::from_secs(5)).await;
    }
    // Ten polls of every deliverer later, still one request per job.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut delivered: Vec<String> = receiver
        .got()
        .iter()
        .map(|r| {
            r.headers["x-minimoto-delivery"]
                .to_str()
                .expect("ascii")
                .to_owned()
        })
        .collect();
    delivered.sort();
    ids.sort();
    assert_eq!(delivered, ids, "each job's webhook sent once");
}

#[tokio::test]
async fn a_failed_attempt_names_the_cause_but_not_the_url() {
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let (ring, _) = open_ring_with_secret(keys_dir.path());
    let mut settings = quick(true);
    settings.schedule.give_up_after = Duration::from_millis(200);
    let api = start_api(ring, settings).await;
    // A port nobody listens on, and a token in the URL that must stay out of errors and logs.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}/hook?token=tok_5ecret");
    let (status, job) = submit(&api, &format!(r#"{{"callback_url": "{url}"}}"#)).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    end(&api, &id).await;
    let hook = webhook_when(&api, &id, "failed", Duration::from_secs(10)).await;
    let error = hook["attempts"][0]["error"].as_str().expect("error");
    assert!(error.contains("could not reach the receiver"), "{error}");
    assert!(
        !error.contains("tok_5ecret") && !error.contains("/hook"),
        "{error}"
    );
}
