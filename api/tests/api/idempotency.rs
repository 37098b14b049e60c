//! `Idempotency-Key` on submit: a retry gets the job its first try made (even when the first
//! answer never reached the client), another request under the same key is refused.

use std::time::Duration;

use minimoto_common::limits::Limits;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::{
    photos::{form, jpeg},
    support::TestApi,
};

async fn post(api: &TestApi, key: &str, options: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let images = [("a.jpg", jpeg(64, 48, 1)), ("b.jpg", jpeg(64, 48, 2))];
    let res = reqwest::Client::new()
        .post(api.url("/v1/jobs"))
        .header("idempotency-key", key)
        .multipart(form(&images, Some(options)))
        .send()
        .await
        .expect("post");
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, headers, res.json().await.expect("json"))
}

async fn job_count(api: &TestApi) -> usize {
    let res = reqwest::get(api.url("/v1/jobs")).await.expect("list");
    let page: Value = res.json().await.expect("json");
    page["jobs"].as_array().expect("jobs").len()
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_same_job_and_another_request_a_422() {
    let api = TestApi::start(Limits::default()).await;
    let options = r#"{"fps": 24}"#;
    let (status, headers, first) = post(&api, "order-1041", options).await;
    assert_eq!(status, 202, "{first}");
    assert!(!headers.contains_key("idempotent-replayed"));
    let (status, headers, again) = post(&api, "order-1041", options).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["id"], first["id"], "the same job");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(job_count(&api).await, 1, "no second job");
    let inputs = api
        .blobs
        .folders("inputs/", None, 10)
        .await
        .expect("folders");
    assert_eq!(inputs.len(), 1, "the photos were stored once: {inputs:?}");

    let (status, _, body) = post(&api, "order-1041", r#"{"fps": 25}"#).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("idempotency-key-reused")),
        "{body}"
    );
    let (status, _, other) = post(&api, "order-1042", r#"{"fps": 25}"#).await;
    assert_eq!(status, 202, "{other}");
    assert_ne!(other["id"], first["id"]);

    for bad in ["", &"k".repeat(256)] {
        let (status, _, body) = post(&api, bad, options).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("bad-idempotency-key")),
            "{bad:?}: {body}"
        );
    }
    assert_eq!(job_count(&api).await, 2);
}

/// The first request is sent whole and the connection dropped before its answer: the job is
/// made all the same, and the retry is answered with it.
#[tokio::test]
async fn a_retry_after_a_lost_answer_gets_the_job_the_first_try_made() {
    let api = TestApi::start(Limits::default()).await;
    let photo = jpeg(64, 48, 3);
    let boundary = "lost-answer-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"images\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(&photo);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let head = format!(
        "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nIdempotency-Key: lost-1\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(api.base.trim_start_matches("http://"))
        .await
        .expect("connect");
    socket.write_all(head.as_bytes()).await.expect("head");
    socket.write_all(&body).await.expect("body");
    socket.flush().await.expect("flush");
    drop(socket);

    // The retry, by another client with its own boundary: the same photo and (no) options.
    let started = std::time::Instant::now();
    let retried = loop {
        let res = reqwest::Client::new()
            .post(api.url("/v1/jobs"))
            .header("idempotency-key", "lost-1")
            .multipart(form(&[("a.jpg", photo.clone())], None))
            .send()
            .await
            .expect("retry");
        let status = res.status().as_u16();
        let job: Value = res.json().await.expect("json");
        match status {
            // Still being submitted, or not even received yet (then the retry makes it).
            409 => assert_eq!(job["code"], "idempotency-in-progress", "{job}"),
            202 => break job,
            other => panic!("{other}: {job}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still in progress"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        job_count(&api).await,
        1,
        "one job for the two tries: {retried}"
    );
}
