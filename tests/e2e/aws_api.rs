//! The public API of the real binary on the AWS backend (moto): keys and tenants (a quota
//! counted on the jobs table's index), `Idempotency-Key` replays held in DynamoDB, the listing
//! through the table's indexes, the event stream of a job, `DELETE` of a running and of a
//! finished job, a signed webhook, and the retention stamped on each job.
//!
//! What moto does not do: it never runs the bucket's lifecycle rules nor the table's TTL, so
//! the reclaiming of expired files on AWS is proved by the rules `setup` writes (the admin
//! tests read them back), not by waiting here.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{
    aws::{aws_env, bucket_of, minimoto, refs},
    clock::{time, until},
    helpers::*,
    moto::Moto,
    webhooks::Receiver,
};

/// Calls as one tenant's key.
struct Caller<'a> {
    app: &'a App,
    key: String,
    http: reqwest::Client,
}

impl<'a> Caller<'a> {
    fn new(app: &'a App, key: String) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self { app, key, http }
    }

    /// With the key, when there is one (an open server takes none).
    fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.key.is_empty() {
            req
        } else {
            req.bearer_auth(&self.key)
        }
    }

    async fn answer(req: reqwest::RequestBuilder) -> (u16, Value) {
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        Self::answer(self.authed(self.http.get(self.app.url(path)))).await
    }

    async fn delete(&self, id: &str) -> (u16, Value) {
        let url = self.app.url(&format!("/v1/jobs/{id}"));
        Self::answer(self.authed(self.http.delete(url))).await
    }

    /// Submits and expects a 202: the job's id.
    async fn submit(&self, form: reqwest::multipart::Form) -> String {
        let (status, _, job) = self.submit_keyed(form, None).await;
        assert_eq!(status, 202, "{job}");
        job["id"].as_str().expect("id").to_owned()
    }

    /// Submits with an `Idempotency-Key`: the status, whether it was a replay, the body.
    async fn submit_keyed(
        &self,
        form: reqwest::multipart::Form,
        key: Option<&str>,
    ) -> (u16, bool, Value) {
        let mut req = self
            .authed(self.http.post(self.app.url("/v1/jobs")))
            .multipart(form);
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        let res = req.send().await.expect("POST /v1/jobs");
        let status = res.status().as_u16();
        let replayed = res.headers().contains_key("idempotent-replayed");
        (status, replayed, res.json().await.unwrap_or(Value::Null))
    }

    /// Follows `GET /v1/jobs/{id}/events` in the background: the stream's text once it ends.
    async fn follow(&self, id: &str) -> tokio::task::JoinHandle<String> {
        let mut res = self
            .authed(
                self.http
                    .get(self.app.url(&format!("/v1/jobs/{id}/events"))),
            )
            .send()
            .await
            .expect("GET events");
        assert_eq!(res.status().as_u16(), 200);
        tokio::spawn(async move {
            let mut text = String::new();
            while let Some(chunk) = res.chunk().await.expect("an event chunk") {
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
            text
        })
    }

    async fn poll(&self, id: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let (status, job) = self.get(&format!("/v1/jobs/{id}")).await;
            assert_eq!(status, 200, "{job}");
            if done(&job) {
                return job;
            }
            assert!(
                start.elapsed() < timeout,
                "job did not get there in {timeout:?}: {job}\nlog:\n{}",
                self.app.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The ids `GET /v1/jobs` + `query` lists, waiting (a few seconds at most) for an index
    /// to show `expected`.
    async fn listed(&self, query: &str, expected: &[&str]) -> Value {
        let start = Instant::now();
        loop {
            let (status, page) = self.get(&format!("/v1/jobs{query}")).await;
            assert_eq!(status, 200, "{page}");
            let ids: Vec<&str> = page["jobs"]
                .as_array()
                .expect("jobs")
                .iter()
                .map(|j| j["id"].as_str().expect("id"))
                .collect();
            if ids == expected {
                return page;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "GET /v1/jobs{query} lists {ids:?}, not {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// `minimoto keys <args> --data-dir <data>`: what it printed on stdout, trimmed.
fn keys(args: &[&str], data: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minimoto"))
        .args(args)
        .args(["--data-dir", data])
        .output()
        .expect("run minimoto keys");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

async fn s3(moto: &Moto) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto.sdk_config().await)
            .force_path_style(true)
            .build(),
    )
}

/// The objects of the bucket whose key holds `id`.
async fn objects_of(moto: &Moto, bucket: &str, id: &str) -> Vec<String> {
    let listed = s3(moto)
        .await
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list the bucket");
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .filter(|k| k.contains(id))
        .map(str::to_owned)
        .collect()
}

const SMALL: &str = r#"{"width": 160, "height": 120, "fps": 12, "seconds_per_image": 1.0}"#;
/// Three minutes of 720p at the slow preset: far longer than the test waits.
const LONG: &str =
    r#"{"width": 1280, "height": 720, "fps": 30, "seconds_per_image": 60, "quality": "high"}"#;

#[tokio::test]
async fn keys_listing_delete_webhooks_and_retention_on_aws() {
    let moto = Moto::start();
    let env = aws_env(&moto);
    let bucket = bucket_of(&env);
    let (ok, text) = minimoto(&["setup"], &env);
    assert!(ok, "{text}");

    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let dir = data.to_str().expect("utf-8");
    let acme_key = keys(&["keys", "add", "--tenant", "acme"], dir);
    let other_key = keys(
        &["keys", "add", "--tenant", "other", "--max-active-jobs", "1"],
        dir,
    );
    let secret = keys(&["keys", "secret", "--tenant", "acme"], dir);
    assert!(secret.starts_with("whsec_"), "{secret}");

    let receiver = Receiver::default();
    let hook = receiver.start(&[]).await;
    let env_refs = refs(&env);
    let app = App::spawn_with_env(
        &data,
        &[
            "--backend",
            "aws",
            "--workers",
            "1",
            "--webhook-allow-private",
            "--retention-days",
            "7",
        ],
        &env_refs,
    );
    let acme = Caller::new(&app, acme_key);
    let other = Caller::new(&app, other_key);
    let (status, _) = Caller::new(&app, "mm_nope".into()).get("/v1/jobs").await;
    assert_eq!(status, 401, "a key that is not one is refused");

    // A finished job: its webhook is signed with acme's secret, and it expires 7 days after
    // it ended (the record 30 days later still).
    let options = format!(
        r#"{{"width": 160, "height": 120, "fps": 12, "seconds_per_image": 1.0, "callback_url": "{hook}"}}"#
    );
    let photos = [("a.jpg", jpeg(320, 240, 1))];
    let (status, replayed, job) = acme
        .submit_keyed(form(&photos, Some(&options)), Some("retry-1"))
        .await;
    assert_eq!((status, replayed), (202, false), "{job}");
    let done = job["id"].as_str().expect("id").to_owned();
    // A retry with the same key and request is the same job (the key is held in DynamoDB);
    // the same key with another request is refused.
    let (status, replayed, job) = acme
        .submit_keyed(form(&photos, Some(&options)), Some("retry-1"))
        .await;
    assert_eq!((status, replayed), (202, true), "{job}");
    assert_eq!(job["id"].as_str(), Some(done.as_str()), "{job}");
    let (status, _, problem) = acme
        .submit_keyed(form(&photos, Some(SMALL)), Some("retry-1"))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "idempotency-key-reused", "{problem}");
    let job = acme
        .poll(&done, Duration::from_secs(120), |j| {
            j["webhook"]["state"] == "delivered"
        })
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let got = receiver.got();
    assert_eq!(got.len(), 1, "delivered once: {job}");
    let header = got[0].signature.as_deref().expect("signed");
    let t: i64 = header
        .strip_prefix("t=")
        .and_then(|h| h.split(',').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("a timestamp in {header}"));
    assert_eq!(
        header,
        minimoto_api::webhooks::signature::sign(&secret, t, &got[0].body),
        "signed with the tenant's secret"
    );
    let body: Value = serde_json::from_slice(&got[0].body).expect("the job's JSON");
    assert_eq!(
        (body["id"].as_str(), body["status"].as_str()),
        (Some(done.as_str()), Some("succeeded"))
    );
    let finished_at = time(&job["finished_at"]);
    assert_eq!(
        time(&job["expires_at"]) - finished_at,
        chrono::Duration::days(7),
        "{job}"
    );
    assert_eq!(
        time(&job["record_expires_at"]) - finished_at,
        chrono::Duration::days(37),
        "{job}"
    );
    let video_url = job["outputs"]["video_url"]
        .as_str()
        .expect("video_url")
        .to_owned();
    assert!(!objects_of(&moto, &bucket, &done).await.is_empty());

    // A running job, and another tenant's queued behind it.
    let images = [
        ("a.jpg", jpeg(640, 360, 1)),
        ("b.jpg", jpeg(640, 360, 2)),
        ("c.jpg", jpeg(640, 360, 3)),
    ];
    let running = acme.submit(form(&images, Some(LONG))).await;
    acme.poll(&running, Duration::from_secs(60), |j| {
        finished(j) || !children_of(app.pid()).is_empty()
    })
    .await;
    let theirs = other
        .submit(form(&[("x.jpg", jpeg(320, 240, 4))], Some(SMALL)))
        .await;
    // Its quota is one active job (counted on the tenant's index).
    let (status, _, problem) = other
        .submit_keyed(form(&[("y.jpg", jpeg(320, 240, 5))], Some(SMALL)), None)
        .await;
    assert_eq!(status, 429, "{problem}");
    assert_eq!(problem["code"], "quota-exceeded", "{problem}");

    // Each tenant sees its own jobs, newest first, a page at a time, by status (the jobs
    // table's indexes by tenant and by tenant and status).
    acme.listed("", &[&running, &done]).await;
    let first = acme.listed("?limit=1", &[&running]).await;
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = acme
        .listed(&format!("?limit=1&cursor={cursor}"), &[&done])
        .await;
    assert!(second["next_cursor"].is_null(), "{second}");
    acme.listed("?status=running", &[&running]).await;
    acme.listed("?status=succeeded", &[&done]).await;
    acme.listed("?status=queued", &[]).await;
    other.listed("", &[&theirs]).await;
    other.listed("?status=queued", &[&theirs]).await;
    for id in [&done, &running] {
        let (status, body) = other.get(&format!("/v1/jobs/{id}")).await;
        assert_eq!(status, 404, "another tenant's job is not found: {body}");
        let (status, _) = other.delete(id).await;
        assert_eq!(status, 404, "nor can it be deleted");
    }

    // DELETE stops the running render within seconds, and ends its event stream; the worker
    // takes the next job.
    let events = acme.follow(&running).await;
    let (status, job) = acme.delete(&running).await;
    assert_eq!(status, 200, "{job}");
    encoder_stopped(&app).await;
    let job = acme
        .poll(&running, Duration::from_secs(30), |j| {
            j["status"] == "cancelled"
        })
        .await;
    assert!(job["deleted_at"].is_string(), "{job}");
    let events = tokio::time::timeout(Duration::from_secs(30), events)
        .await
        .expect("the event stream ends with the job")
        .expect("the follower");
    let last: Value = events
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .next_back()
        .map(|d| serde_json::from_str(d.trim()).expect("an event's JSON"))
        .unwrap_or_else(|| panic!("no event in {events:?}"));
    assert_eq!(last["status"], "cancelled", "{events}");
    let theirs_done = other
        .poll(&theirs, Duration::from_secs(120), finished)
        .await;
    assert_eq!(theirs_done["status"], "succeeded", "{theirs_done}");
    acme.listed("?status=cancelled", &[&running]).await;

    // DELETE of the finished job takes its photos and outputs out of S3, keeps the record,
    // and its outputs answer 410 (the presigned link finds nothing).
    let (status, job) = acme.delete(&done).await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(
        (job["status"].as_str(), &job["outputs_expired"]),
        (Some("succeeded"), &Value::Bool(true)),
        "{job}"
    );
    let left = objects_of(&moto, &bucket, &done).await;
    assert!(
        left.is_empty(),
        "objects of the deleted job remain: {left:?}"
    );
    let left = objects_of(&moto, &bucket, &running).await;
    assert!(
        left.is_empty(),
        "objects of the cancelled job remain: {left:?}"
    );
    for output in ["video", "poster"] {
        let (status, body) = acme.get(&format!("/v1/jobs/{done}/{output}")).await;
        assert_eq!(status, 410, "{output}: {body}");
    }
    let gone = reqwest::get(&video_url).await.expect("presigned GET");
    assert_eq!(gone.status().as_u16(), 404, "the video left the bucket");

    // A revoked key is refused from then on.
    let listing = keys(&["keys", "list"], dir);
    let other_id = listing
        .lines()
        .find(|l| l.contains("other"))
        .and_then(|l| l.split('\t').next())
        .unwrap_or_else(|| panic!("other's key in {listing}"))
        .to_owned();
    keys(&["keys", "revoke", &other_id], dir);
    let start = Instant::now();
    while other.get("/v1/jobs").await.0 != 403 {
        assert!(start.elapsed() < Duration::from_secs(5), "still accepted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(app);
    let (ok, text) = minimoto(&["cleanup"], &env);
    assert!(ok, "{text}");
}

/// On AWS the files go by the bucket's rules (which moto never runs), but the API answers by
/// each job's `expires_at` all the same: from then on its outputs are 410 Gone.
#[tokio::test]
async fn outputs_answer_410_once_their_retention_has_passed_on_aws() {
    let moto = Moto::start();
    let env = aws_env(&moto);
    let (ok, text) = minimoto(&["setup", "--retention-days", "0.0001"], &env);
    assert!(ok, "{text}");
    // S3 counts whole days: the fraction became a 1-day rule on `outputs/`.
    let bucket = bucket_of(&env);
    let rules = s3(&moto)
        .await
        .get_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .send()
        .await
        .expect("lifecycle rules")
        .rules
        .unwrap_or_default();
    let outputs = rules
        .iter()
        .find(|r| r.filter().and_then(|f| f.prefix()) == Some("outputs/"))
        .unwrap_or_else(|| panic!("no rule on outputs/: {rules:?}"));
    assert_eq!(outputs.expiration().and_then(|e| e.days()), Some(1));
    let tmp = tempfile::tempdir().expect("tempdir");
    let env_refs = refs(&env);
    // 0.0001 days: 9 s.
    let app = App::spawn_with_env(
        &tmp.path().join("data"),
        &["--backend", "aws", "--retention-days", "0.0001"],
        &env_refs,
    );
    let (status, job, _) = submit(&app, form(&[("a.jpg", jpeg(320, 240, 1))], Some(SMALL))).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    let job = poll_until(&app, &id, Duration::from_secs(120), finished).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let expires = time(&job["expires_at"]);
    assert_eq!(
        expires - time(&job["finished_at"]),
        chrono::Duration::seconds(9),
        "{job}"
    );
    let caller = Caller::new(&app, String::new());
    let (status, _) = caller.get(&format!("/v1/jobs/{id}/video")).await;
    assert_eq!(status, 302, "downloadable until it expires");
    until(expires).await;
    for output in ["video", "poster"] {
        let (status, problem) = caller.get(&format!("/v1/jobs/{id}/{output}")).await;
        assert_eq!(status, 410, "{output}: {problem}");
        assert_eq!(problem["code"], "expired", "{problem}");
    }
    let (_, job) = caller.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(job["outputs_expired"], true, "{job}");
    drop(app);
    let (ok, text) = minimoto(&["cleanup"], &env);
    assert!(ok, "{text}");
}
