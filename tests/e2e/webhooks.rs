//! A webhook's delivery is stored, not held in memory: a receiver that refuses the first attempt
//! gets the retry from the server that replaces a `kill -9`ed one.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{body::Bytes, extract::State, http::HeaderMap, routing::post};
use serde_json::Value;

use crate::helpers::*;

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub at: Instant,
    /// Its `X-Minimoto-Signature`, if it had one.
    pub signature: Option<String>,
    pub body: Bytes,
}

/// A webhook receiver on loopback that answers as scripted and keeps what it got.
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    /// Statuses to answer with, in order; 204 once they run out.
    script: Arc<Mutex<VecDeque<u16>>>,
    got: Arc<Mutex<Vec<Received>>>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::http::StatusCode {
    r.got.lock().expect("lock").push(Received {
        at: Instant::now(),
        signature: headers
            .get("x-minimoto-signature")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body,
    });
    let status = r.script.lock().expect("lock").pop_front().unwrap_or(204);
    axum::http::StatusCode::from_u16(status).expect("status")
}

impl Receiver {
    /// Listens on loopback; the URL to give as `callback_url`.
    pub async fn start(&self, statuses: &[u16]) -> String {
        self.script.lock().expect("lock").extend(statuses);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://127.0.0.1:{port}/hook")
    }

    pub fn got(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }
}

const SERVE: [&str; 4] = [
    "--webhook-allow-private",
    "--webhook-first-retry-seconds",
    "5",
    "--workers=1",
];

#[tokio::test]
async fn a_webhook_refused_before_a_kill_9_is_delivered_by_the_restarted_server() {
    let receiver = Receiver::default();
    let url = receiver.start(&[503]).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    // Without keys everything is the `default` tenant's; its webhooks need a signing secret.
    let secret = std::process::Command::new(env!("CARGO_BIN_EXE_minimoto"))
        .args(["keys", "secret", "--tenant", "default", "--data-dir"])
        .arg(&data)
        .output()
        .expect("run minimoto keys secret");
    assert!(secret.status.success(), "{secret:?}");
    let mut app = App::spawn(&data, &SERVE);

    let options = format!(
        r#"{{"width": 320, "height": 240, "fps": 12, "seconds_per_image": 1.0, "callback_url": "{url}"}}"#
    );
    let (status, job, _) =
        submit(&app, form(&[("a.jpg", jpeg(320, 240, 1))], Some(&options))).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    let refused = |j: &Value| {
        j["webhook"]["state"] == "pending"
            && j["webhook"]["attempts"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
    };
    let job = poll_until(&app, &id, Duration::from_secs(120), refused).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        job["webhook"]["attempts"][0]["status"], 503,
        "the refusal is recorded: {job}"
    );

    app.kill_hard();
    let killed = Instant::now();
    assert_eq!(receiver.got().len(), 1, "no retry before the restart");
    let app = App::spawn(&data, &SERVE);
    let job = poll_until(&app, &id, Duration::from_secs(60), |j| {
        j["webhook"]["state"] == "delivered"
    })
    .await;

    let got = receiver.got();
    assert_eq!(got.len(), 2, "one refused attempt, one delivered: {job}");
    let retry = &got[1];
    assert!(retry.at > killed, "the retry came from the new process");
    assert!(retry.signature.is_some(), "the retry is signed");
    let body: Value = serde_json::from_slice(&retry.body).expect("the job's JSON");
    assert_eq!(body["id"], id.as_str(), "{body}");
    assert_eq!(body["status"], "succeeded", "{body}");
    assert_eq!(
        job["webhook"]["attempts"].as_array().map(Vec::len),
        Some(2),
        "{job}"
    );
}
