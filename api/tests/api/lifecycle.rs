//! A job's life after submit, through the API: deleting it (cancelling it first when it has not
//! ended) takes its files, keeps its record and turns its outputs into 410 Gone.

use chrono::Utc;
use minimoto_common::{
    JobId,
    job::{Outputs, Status},
    layout,
    limits::Limits,
    ports::{Update, update_job},
    spec::Format,
};
use serde_json::Value;

use crate::{
    photos::{form, jpeg},
    support::{TestApi, no_redirects},
};

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let res = request.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.expect("a JSON body"))
}

/// Submits two photos; the new job's id.
async fn submit(api: &TestApi) -> JobId {
    let images = [("a.jpg", jpeg(64, 48, 1)), ("b.jpg", jpeg(64, 48, 2))];
    let (status, job) = send(
        reqwest::Client::new()
            .post(api.url("/v1/jobs"))
            .multipart(form(&images, None)),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    job["id"].as_str().expect("id").parse().expect("a job id")
}

/// The stored files of job `id`, photos and outputs.
async fn files_of(api: &TestApi, id: JobId) -> Vec<String> {
    let mut found = Vec::new();
    for prefix in [layout::INPUTS, layout::OUTPUTS] {
        let folders = api.blobs.folders(prefix, None, 100).await.expect("folders");
        found.extend(
            folders
                .into_iter()
                .filter(|f| *f == id.to_string())
                .map(|f| format!("{prefix}{f}")),
        );
    }
    found
}

#[tokio::test]
async fn deleting_a_queued_job_cancels_it_and_takes_its_photos() {
    let api = TestApi::start(Limits::default()).await;
    let id = submit(&api).await;
    assert_eq!(files_of(&api, id).await, [format!("inputs/{id}")]);
    let url = api.url(&format!("/v1/jobs/{id}"));
    let client = reqwest::Client::new();

    let (status, job) = send(client.delete(&url)).await;
    assert_eq!(
        (status, job["status"].as_str()),
        (200, Some("cancelled")),
        "{job}"
    );
    let deleted_at = job["deleted_at"].as_str().expect("deleted_at").to_owned();
    assert!(
        files_of(&api, id).await.is_empty(),
        "the photos are deleted"
    );
    let stored = api
        .jobs
        .get(id)
        .await
        .expect("get")
        .expect("the record stays");
    assert_eq!(stored.status, Status::Cancelled);

    // Deleting again answers the same job and changes nothing.
    let (status, again) = send(client.delete(&url)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["deleted_at"].as_str(), Some(deleted_at.as_str()));
    assert_eq!(
        api.jobs.get(id).await.expect("get").expect("job").version,
        stored.version
    );

    let res = no_redirects()
        .get(format!("{url}/video"))
        .send()
        .await
        .expect("video");
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("problem");
    assert_eq!(
        (status, body["code"].as_str()),
        (410, Some("expired")),
        "{body}"
    );

    let (status, body) = send(client.delete(api.url(&format!("/v1/jobs/{}", JobId::new())))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not-found")),
        "{body}"
    );
}

#[tokio::test]
async fn deleting_a_succeeded_job_keeps_its_status_and_takes_its_outputs() {
    let api = TestApi::start(Limits::default()).await;
    let id = submit(&api).await;
    // A worker's part: claim, store the outputs, succeed.
    let scratch = api.data().join("made.bin");
    std::fs::write(&scratch, b"not really a video").expect("write");
    let (video, poster) = (layout::video(id, Format::Mp4), layout::poster(id));
    for key in [&video, &poster] {
        api.blobs
            .put_file(key, &scratch, "application/octet-stream")
            .await
            .expect("put");
    }
    let outputs = Outputs {
        video_key: video.clone(),
        poster_key: poster,
        thumbnails: Vec::new(),
        preview_key: None,
        duration_seconds: 2.0,
        width: 64,
        height: 48,
        frames: 60,
        size_bytes: 18,
    };
    for step in 0..2 {
        let done = update_job(api.jobs.as_ref(), id, |j| match step {
            0 => j.claim("w", Utc::now(), chrono::Duration::seconds(30)),
            _ => j.succeed("w", outputs.clone(), Utc::now()),
        })
        .await
        .expect("update");
        assert!(matches!(done, Update::Done(_)), "{done:?}");
    }
    let url = api.url(&format!("/v1/jobs/{id}"));
    let (_, before) = send(reqwest::Client::new().get(&url)).await;
    assert!(before["outputs"]["video_url"].is_string(), "{before}");
    assert_eq!(files_of(&api, id).await.len(), 2);

    let (status, job) = send(reqwest::Client::new().delete(&url)).await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(
        job["status"], "succeeded",
        "a finished job keeps its status"
    );
    assert_eq!(
        (job["outputs"].is_null(), &job["outputs_expired"]),
        (true, &Value::Bool(true))
    );
    assert!(job["deleted_at"].is_string(), "{job}");
    assert!(
        files_of(&api, id).await.is_empty(),
        "photos and outputs are deleted"
    );
    assert_eq!(api.blobs.size(&video).await.expect("size"), None);
    for output in ["video", "poster"] {
        let res = no_redirects()
            .get(format!("{url}/{output}"))
            .send()
            .await
            .expect("get");
        assert_eq!(res.status().as_u16(), 410, "{output}");
    }
}

#[tokio::test]
async fn jobs_are_listed_newest_first_a_page_at_a_time_and_by_status() {
    let api = TestApi::start(Limits::default()).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(submit(&api).await.to_string());
    }
    ids.reverse();
    let http = reqwest::Client::new();
    let page = |query: String| send(http.get(api.url(&format!("/v1/jobs?{query}"))));
    let listed = |page: &Value| -> Vec<String> {
        page["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .map(|j| j["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let (status, first) = page("limit=2".into()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(listed(&first), ids[..2]);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, second) = page(format!("limit=2&cursor={cursor}")).await;
    assert_eq!(listed(&second), ids[2..]);
    assert!(second["next_cursor"].is_null(), "{second}");
    let (_, all) = page(String::new()).await;
    assert_eq!(listed(&all), ids);

    send(http.delete(api.url(&format!("/v1/jobs/{}", ids[1])))).await;
    let (_, cancelled) = page("status=cancelled".into()).await;
    assert_eq!(listed(&cancelled), [ids[1].clone()]);
    let (_, queued) = page("status=queued".into()).await;
    assert_eq!(listed(&queued), [ids[0].clone(), ids[2].clone()]);

    let (status, bad) = page("limit=500&status=done&cursor=abc&sort=asc".into()).await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (422, Some("invalid-query")),
        "{bad}"
    );
    let fields: Vec<_> = bad["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    assert_eq!(fields, ["limit", "status", "cursor", "sort"], "{bad}");
}

/// Reads Server-Sent Events from a streaming response: `(id, event, data)` each.
struct Events {
    res: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn next(&mut self) -> Option<(u64, String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                let data = serde_json::from_str(&data).expect("event data is JSON");
                return Some((id.expect("an id"), event, data));
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), self.res.chunk())
                .await
                .expect("an event within 10 s")
                .expect("read")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }
}

async fn follow(api: &TestApi, id: JobId, last: Option<u64>) -> Events {
    let mut request = reqwest::Client::new().get(api.url(&format!("/v1/jobs/{id}/events")));
    if let Some(last) = last {
        request = request.header("last-event-id", last.to_string());
    }
    let res = request.send().await.expect("events");
    assert_eq!(res.status(), 200);
    let kind = res.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    Events {
        res,
        buffer: String::new(),
    }
}

/// The request timeout bounds answering, not streaming: an event stream outlives it.
#[tokio::test]
async fn an_event_stream_outlives_the_request_timeout() {
    let api = TestApi::start_tuned(
        Limits::default(),
        |c| c.request_timeout = std::time::Duration::from_millis(300),
        |p| p,
    )
    .await;
    let id = submit(&api).await;
    let mut events = follow(&api, id, None).await;
    events.next().await.expect("the current state first");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    update_job(api.jobs.as_ref(), id, |j| {
        j.claim("w", Utc::now(), chrono::Duration::seconds(30))
    })
    .await
    .expect("update");
    let (_, _, running) = events
        .next()
        .await
        .expect("an event four request timeouts later");
    assert_eq!(running["status"], "running", "{running}");
}

#[tokio::test]
async fn events_follow_a_job_to_its_end_and_resume_after_the_last_event_id() {
    let api = TestApi::start(Limits::default()).await;
    let id = submit(&api).await;
    let mut events = follow(&api, id, None).await;
    let (v0, kind, job) = events.next().await.expect("the current state first");
    assert_eq!(
        (kind.as_str(), &job["status"]),
        ("job", &Value::from("queued")),
        "{job}"
    );

    let change = |step: u8| {
        let jobs = api.jobs.clone();
        async move {
            update_job(jobs.as_ref(), id, |j| match step {
                0 => j.claim("w", Utc::now(), chrono::Duration::seconds(30)),
                1 => j.heartbeat("w", minimoto_common::job::Stage::Rendering, 0.5, Utc::now()),
                _ => j.fail(
                    "w",
                    minimoto_common::job::JobError::new(
                        minimoto_common::ErrorCode::EncoderFailed,
                        "x",
                    ),
                    Utc::now(),
                ),
            })
            .await
            .expect("update")
        }
    };
    change(0).await;
    let (v1, _, running) = events.next().await.expect("running");
    assert_eq!(
        (running["status"].as_str(), v1 > v0),
        (Some("running"), true),
        "{running}"
    );
    change(1).await;
    let (v2, _, half) = events.next().await.expect("progress");
    assert_eq!(
        (half["progress"].as_f64(), half["stage"].as_str()),
        (Some(0.5), Some("rendering")),
        "{half}"
    );
    assert!(
        half["eta_seconds"].as_f64().is_some_and(|s| s >= 0.0),
        "{half}"
    );
    change(2).await;
    let (v3, _, end) = events.next().await.expect("the end state");
    assert_eq!(end["status"], "failed", "{end}");
    assert!(
        events.next().await.is_none(),
        "the stream closes after the end state"
    );

    // Resumed after the half-way event: the end state at once, then the end.
    let mut resumed = follow(&api, id, Some(v2)).await;
    let (v, _, again) = resumed.next().await.expect("the state after v2");
    assert_eq!((v, again["status"].as_str()), (v3, Some("failed")));
    assert!(resumed.next().await.is_none());
    // Resumed after the end: nothing more.
    assert!(follow(&api, id, Some(v3)).await.next().await.is_none());

    // An id this stream never sent is refused, and says what it must be.
    for bad in ["", "abc", "-1", "1.5", "99999999999999999999"] {
        let res = reqwest::Client::new()
            .get(api.url(&format!("/v1/jobs/{id}/events")))
            .header("last-event-id", bad)
            .send()
            .await
            .expect("events");
        assert_eq!(res.status(), 400, "{bad:?}");
        let problem: Value = res.json().await.expect("json");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("Last-Event-ID")),
            "{problem}"
        );
    }
}
