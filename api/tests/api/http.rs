//! The HTTP contract, in-process: status codes, problem bodies and headers for the ways a request
//! can go wrong, including a backend that is down.

use std::{path::Path, sync::Arc, time::Duration};

use crate::support::TestApi;
use async_trait::async_trait;
use minimoto_common::{
    Error, JobId, Result,
    job::Job,
    limits::Limits,
    ports::{BlobStore, JobQuery, JobStore, KeyClaim, SignedUrl},
};
use serde_json::Value;

async fn get(url: String) -> (u16, reqwest::header::HeaderMap, Value) {
    json(reqwest::get(url).await.expect("GET")).await
}

async fn json(res: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.json().await.expect("a JSON body");
    (status, headers, body)
}

fn is_problem(headers: &reqwest::header::HeaderMap) -> bool {
    headers.get("content-type").map(|v| v.as_bytes()) == Some(b"application/problem+json")
}

#[tokio::test]
async fn wrong_routes_methods_and_accepts_are_problems() {
    let api = TestApi::start(Limits::default()).await;
    let client = reqwest::Client::new();

    let (status, headers, body) = get(api.url("/nope")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not-found")));
    assert!(is_problem(&headers));

    let (status, headers, body) = json(
        client
            .delete(api.url("/healthz"))
            .send()
            .await
            .expect("delete"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method-not-allowed"))
    );
    assert!(is_problem(&headers) && headers.contains_key("allow"));

    let id = JobId::new();
    let res = client
        .get(api.url(&format!("/v1/jobs/{id}")))
        .header("accept", "text/html")
        .send()
        .await
        .expect("get");
    let (status, _, body) = json(res).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (406, Some("not-acceptable"))
    );

    let res = client
        .post(api.url("/v1/jobs"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("post");
    let (status, _, body) = json(res).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (415, Some("not-multipart"))
    );

    let (status, _, body) = get(api.url(&format!("/v1/jobs/{id}"))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not-found")),
        "{body}"
    );
}

#[tokio::test]
async fn the_backend_routes_of_the_wiring_are_served_with_the_apis_errors() {
    let api = TestApi::start(Limits::default()).await;
    let res = reqwest::get(api.url("/files/outputs/x/video.mp4?expires=1&signature=00"))
        .await
        .expect("get");
    let (status, headers, body) = json(res).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("bad-signature"))
    );
    assert!(is_problem(&headers));
}

/// A store whose every call fails as an unreachable backend would.
#[derive(Debug)]
struct Down;

fn down<T>() -> Result<T> {
    Err(Error::backend("test", "connection refused"))
}

#[async_trait]
impl JobStore for Down {
    async fn create(&self, _: &Job) -> Result<()> {
        down()
    }
    async fn get(&self, _: JobId) -> Result<Option<Job>> {
        down()
    }
    async fn replace(&self, _: &Job) -> Result<Job> {
        down()
    }
    async fn delete(&self, _: JobId) -> Result<bool> {
        down()
    }
    async fn list(&self, _: &JobQuery) -> Result<Vec<Job>> {
        down()
    }
    async fn count_active(&self, _: &str) -> Result<u64> {
        down()
    }
    async fn due_announcements(
        &self,
        _: chrono::DateTime<chrono::Utc>,
        _: usize,
    ) -> Result<Vec<minimoto_common::JobId>> {
        down()
    }
    async fn claim_key(&self, _: &str, _: &str, _: &KeyClaim) -> Result<Option<KeyClaim>> {
        down()
    }
    async fn replace_key(&self, _: &str, _: &str, _: &KeyClaim, _: &KeyClaim) -> Result<bool> {
        down()
    }
    async fn release_key(&self, _: &str, _: &str, _: JobId) -> Result<()> {
        down()
    }
    async fn ready(&self) -> Result<()> {
        down()
    }
}

#[async_trait]
impl BlobStore for Down {
    async fn put_file(&self, _: &str, _: &Path, _: &str) -> Result<u64> {
        down()
    }
    async fn get_to_file(&self, _: &str, _: &Path) -> Result<u64> {
        down()
    }
    async fn size(&self, _: &str) -> Result<Option<u64>> {
        down()
    }
    async fn delete_prefix(&self, _: &str) -> Result<u64> {
        down()
    }
    async fn folders(&self, _: &str, _: Option<&str>, _: usize) -> Result<Vec<String>> {
        down()
    }
    async fn remove_debris(&self, _: Duration) -> Result<u64> {
        down()
    }
    async fn url(&self, _: &str, _: Duration) -> Result<SignedUrl> {
        down()
    }
    async fn ready(&self) -> Result<()> {
        down()
    }
}

fn photo() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, 77])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode");
    out.into_inner()
}

#[tokio::test]
async fn a_backend_that_is_down_is_a_503_with_retry_after_never_a_500() {
    let api = TestApi::start_with(Limits::default(), |mut p| {
        p.jobs = Arc::new(Down);
        p.blobs = Arc::new(Down);
        p
    })
    .await;
    let client = reqwest::Client::new();
    let part = reqwest::multipart::Part::bytes(photo()).file_name("a.jpg");
    let res = client
        .post(api.url("/v1/jobs"))
        .multipart(reqwest::multipart::Form::new().part("images", part))
        .send()
        .await
        .expect("post");
    let (status, headers, body) = json(res).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("backend-unavailable")),
        "{body}"
    );
    assert!(headers.contains_key("retry-after") && is_problem(&headers));
    assert!(
        !body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("refused"),
        "no internals in the answer: {body}"
    );
    let depth = api.queue.depth().await.expect("depth");
    assert_eq!(depth.visible, 0, "a refused submission queues nothing");

    let id = JobId::new();
    let (status, headers, body) = get(api.url(&format!("/v1/jobs/{id}"))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("backend-unavailable"))
    );
    assert!(headers.contains_key("retry-after"));

    let (status, headers, body) = get(api.url("/readyz")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    assert!(headers.contains_key("retry-after"));
    let failing: Vec<&str> = body["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(failing, ["jobs", "blobs"], "{body}");
    assert!(
        !body.to_string().contains("refused"),
        "the backend's own message stays in the log: {body}"
    );

    let (status, _, body) = get(api.url("/healthz")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
}

#[tokio::test]
async fn readiness_reports_every_dependency_when_all_answer() {
    let api = TestApi::start(Limits::default()).await;
    let (status, _, body) = json(reqwest::get(api.url("/readyz")).await.expect("get")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("ready")),
        "{body}"
    );
    let names: Vec<&str> = body["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["jobs", "queue", "blobs", "disk"]);
    assert!(
        body["checks"][3]["free_bytes"]
            .as_u64()
            .is_some_and(|b| b > 0),
        "{body}"
    );
    assert_eq!(body["checks"][1]["visible"], 0);
}

#[tokio::test]
async fn the_server_serves_its_own_openapi_document() {
    let api = TestApi::start(Limits::default()).await;
    let (status, headers, body) = get(api.url("/openapi.json")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    let expected = serde_json::to_value(minimoto_api::openapi()).expect("json");
    assert_eq!(body, expected, "the same document as `minimoto openapi`");
    assert!(
        body["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "{}",
        body["openapi"]
    );
    for path in ["/openapi.json", "/v1/jobs", "/v1/jobs/{id}/poster"] {
        assert!(body["paths"][path].is_object(), "{path} missing");
    }
}

#[tokio::test]
async fn the_limits_in_force_are_published() {
    let limits = Limits {
        max_images: 7,
        max_audio_bytes: 12_345,
        ..Limits::default()
    };
    let api = TestApi::start(limits.clone()).await;
    let (status, _, body) = get(api.url("/v1/limits")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["max_images"], 7);
    assert_eq!(body["max_audio_bytes"], 12_345);
    assert_eq!(body["max_image_bytes"], limits.max_image_bytes);
    assert_eq!(body["max_megapixel_frames"], limits.max_megapixel_frames);
    assert!(
        body["url_ttl_seconds"].as_u64().is_some_and(|s| s > 0),
        "{body}"
    );
    assert!(
        body["max_uploads_in_flight"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{body}"
    );
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let api = TestApi::start(Limits::default()).await;
    let client = reqwest::Client::new();
    let mut seen = std::collections::HashSet::new();
    for path in ["/healthz", "/v1/jobs/nope", "/no-such-route"] {
        let res = client.get(api.url(path)).send().await.expect("GET");
        let id = res.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert_eq!(id.len(), 36, "a UUID for {path}: {id}");
        assert!(seen.insert(id), "a new id per request");
    }
    // A client's own id is kept, on a success and on a problem alike.
    for path in ["/healthz", "/v1/jobs/nope"] {
        let res = client
            .get(api.url(path))
            .header("x-request-id", "client-trace-42")
            .send()
            .await
            .expect("GET");
        assert_eq!(res.headers()["x-request-id"], "client-trace-42", "{path}");
    }
}

/// A job store that never answers, as a backend stuck behind a lock would.
#[derive(Debug)]
struct Hung;

async fn hang<T>() -> Result<T> {
    std::future::pending().await
}

#[async_trait]
impl JobStore for Hung {
    async fn create(&self, _: &Job) -> Result<()> {
        hang().await
    }
    async fn get(&self, _: JobId) -> Result<Option<Job>> {
        hang().await
    }
    async fn replace(&self, _: &Job) -> Result<Job> {
        hang().await
    }
    async fn delete(&self, _: JobId) -> Result<bool> {
        hang().await
    }
    async fn list(&self, _: &JobQuery) -> Result<Vec<Job>> {
        hang().await
    }
    async fn count_active(&self, _: &str) -> Result<u64> {
        hang().await
    }
    async fn due_announcements(
        &self,
        _: chrono::DateTime<chrono::Utc>,
        _: usize,
    ) -> Result<Vec<minimoto_common::JobId>> {
        hang().await
    }
    async fn claim_key(&self, _: &str, _: &str, _: &KeyClaim) -> Result<Option<KeyClaim>> {
        hang().await
    }
    async fn replace_key(&self, _: &str, _: &str, _: &KeyClaim, _: &KeyClaim) -> Result<bool> {
        hang().await
    }
    async fn release_key(&self, _: &str, _: &str, _: JobId) -> Result<()> {
        hang().await
    }
    async fn ready(&self) -> Result<()> {
        hang().await
    }
}

#[tokio::test]
async fn a_request_that_cannot_be_answered_in_time_is_a_503_not_a_hang() {
    let api = TestApi::start_tuned(
        Limits::default(),
        |c| c.request_timeout = Duration::from_millis(300),
        |mut p| {
            p.jobs = Arc::new(Hung);
            p
        },
    )
    .await;
    let started = std::time::Instant::now();
    let (status, headers, body) = get(api.url(&format!("/v1/jobs/{}", JobId::new()))).await;
    let waited = started.elapsed();
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("request-timeout")),
        "{body}"
    );
    assert!(headers.contains_key("retry-after") && is_problem(&headers));
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "answered after {waited:?}"
    );
    // Routes that need no store still answer at once.
    let (status, _, _) = get(api.url("/healthz")).await;
    assert_eq!(status, 200);
}

/// `/metrics` speaks Prometheus: requests by route pattern (never a job's id) and status, the
/// bytes ingested, and what it reads at the scrape (the queue's depth, jobs by status).
#[tokio::test]
async fn metrics_count_requests_by_route_and_read_the_queue_at_the_scrape() {
    let api = TestApi::start(Limits::default()).await;
    let images = [("a.jpg", crate::photos::jpeg(64, 48, 1))];
    let res = reqwest::Client::new()
        .post(api.url("/v1/jobs"))
        .multipart(crate::photos::form(&images, None))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 202);
    let job: Value = res.json().await.expect("json");
    let id = job["id"].as_str().expect("id");
    let (status, _, _) = get(api.url(&format!("/v1/jobs/{id}"))).await;
    assert_eq!(status, 200);

    let res = reqwest::get(api.url("/metrics")).await.expect("metrics");
    assert_eq!(res.status(), 200);
    let kind = res.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(kind.starts_with("text/plain"), "{kind}");
    let text = res.text().await.expect("text");
    for wanted in [
        r#"minimoto_http_requests_total{method="POST",route="/v1/jobs",status="202"}"#,
        r#"minimoto_http_requests_total{method="GET",route="/v1/jobs/{id}",status="200"}"#,
        "minimoto_http_request_duration_seconds_bucket",
        "minimoto_ingest_bytes_total",
        "minimoto_jobs_submitted_total",
        r#"minimoto_queue_messages{state="visible"} 1"#,
        r#"minimoto_jobs{status="queued"} 1"#,
    ] {
        assert!(text.contains(wanted), "{wanted} missing from:\n{text}");
    }
    assert!(
        !text.contains(id),
        "a job id in a label makes a series per job"
    );
}
