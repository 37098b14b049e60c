//! The events queue through the API and its deliverer: on a server started with
//! `--publish-events`, every job's end is published once as `{"type", "id", "job"}`, and the
//! job shows the publication; on one without, nothing is.

use std::time::{Duration, Instant};

use minimoto_api::webhooks::Settings;
use minimoto_common::{limits::Limits, ports::EventQueue};
use serde_json::Value;

use crate::{
    photos::{form, jpeg},
    support::{TestApi, succeed_as_worker},
};

async fn start(publish_events: bool) -> TestApi {
    TestApi::start_tuned(
        Limits::default(),
        move |c| {
            c.publish_events = publish_events;
            c.webhooks = Settings {
                poll: Duration::from_millis(50),
                ..Settings::default()
            };
        },
        |p| p,
    )
    .await
}

async fn submit(api: &TestApi) -> String {
    let res = reqwest::Client::new()
        .post(api.url("/v1/jobs"))
        .multipart(form(&[("a.jpg", jpeg(64, 48, 1))], None))
        .send()
        .await
        .expect("submit");
    assert_eq!(res.status(), 202);
    let job: Value = res.json().await.expect("json");
    job["id"].as_str().expect("id").to_owned()
}

async fn cancel(api: &TestApi, id: &str) {
    let res = reqwest::Client::new()
        .delete(api.url(&format!("/v1/jobs/{id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
}

async fn view(api: &TestApi, id: &str) -> Value {
    reqwest::get(api.url(&format!("/v1/jobs/{id}")))
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

/// Receives (and acks) messages until `n` have come; fails after `within`.
async fn receive(api: &TestApi, n: usize, within: Duration) -> Vec<Value> {
    let started = Instant::now();
    let mut got = Vec::new();
    while got.len() < n {
        assert!(
            started.elapsed() < within,
            "{} of {n} events within {within:?}: {got:?}",
            got.len()
        );
        let messages = api
            .events
            .receive(10, Duration::from_millis(500), Duration::from_secs(30))
            .await
            .expect("receive");
        for m in messages {
            got.push(serde_json::from_str(&m.body).expect("an event is JSON"));
            api.events.ack(&m.receipt).await.expect("ack");
        }
    }
    got
}

#[tokio::test]
async fn a_publishing_server_puts_each_end_on_the_events_queue_once() {
    let api = start(true).await;
    let (cancelled, succeeded) = (submit(&api).await, submit(&api).await);
    assert!(
        view(&api, &cancelled).await["queue_event"].is_null(),
        "nothing to publish before the job ends"
    );
    cancel(&api, &cancelled).await;
    succeed_as_worker(&api, &succeeded).await;

    let mut events = receive(&api, 2, Duration::from_secs(10)).await;
    events.sort_by_key(|e| e["type"].as_str().map(str::to_owned));
    let (c, s) = (&events[0], &events[1]);
    assert_eq!(c["type"], "job.cancelled", "{c}");
    assert_eq!(c["id"], cancelled.as_str(), "{c}");
    assert_eq!(c["job"]["id"], cancelled.as_str(), "{c}");
    assert_eq!(c["job"]["status"], "cancelled", "{c}");
    assert_eq!(s["type"], "job.succeeded", "{s}");
    assert_eq!(s["id"], succeeded.as_str(), "{s}");
    assert_eq!(s["job"]["status"], "succeeded", "{s}");
    assert!(
        s["job"]["outputs"]["video_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http")),
        "the event carries the download links: {s}"
    );

    for id in [&cancelled, &succeeded] {
        let event = &view(&api, id).await["queue_event"];
        assert_eq!(event["state"], "delivered", "{event}");
        assert_eq!(
            event["attempts"].as_array().map(Vec::len),
            Some(1),
            "{event}"
        );
    }
    // Published once each: nothing more comes, and the queue is empty after the acks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let more = api
        .events
        .receive(10, Duration::from_millis(200), Duration::from_secs(30))
        .await
        .expect("receive");
    assert!(more.is_empty(), "{more:?}");
    assert_eq!(api.events.len().await.expect("len"), 0);
}

#[tokio::test]
async fn a_server_without_publish_events_publishes_nothing() {
    let api = start(false).await;
    let id = submit(&api).await;
    cancel(&api, &id).await;
    // Several polls of the deliverer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(api.events.len().await.expect("len"), 0);
    let job = view(&api, &id).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    assert!(job["queue_event"].is_null(), "{job}");
}
