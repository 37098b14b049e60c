//! The events queue through the real binaries: `serve --publish-events` publishes each job's end,
//! and `minimoto events` prints them one JSON line each, deleting what it printed (unless
//! `--keep`), or waits for the next with `--follow`.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::helpers::*;

/// `minimoto events` with `args` on the embedded backend in `data`: its success, the events it
/// printed, and its stderr.
fn events(data: &Path, args: &[&str]) -> (bool, Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_minimoto"))
        .arg("events")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .expect("run minimoto events");
    let printed = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), printed, stderr)
}

fn ids(events: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = events
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

/// Submits a small job and returns its id.
async fn submit_one(app: &App, seed: u8) -> String {
    let images = [("a.jpg", jpeg(320, 240, seed))];
    let (status, job, _) = submit(app, form(&images, Some(crate::SMALL))).await;
    assert_eq!(status, 202, "{job}");
    job["id"].as_str().expect("id").to_owned()
}

/// The job has ended and its event is on the queue.
fn published(job: &Value) -> bool {
    finished(job) && job["queue_event"]["state"] == "delivered"
}

#[tokio::test]
async fn the_events_command_prints_each_published_end_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");

    let (ok, printed, stderr) = events(&data, &[]);
    assert!(
        !ok && printed.is_empty() && stderr.contains("no minimoto database"),
        "a data directory without a server is an error, not an empty queue: {stderr}"
    );

    let app = App::spawn(&data, &["--publish-events"]);
    let mut submitted = vec![submit_one(&app, 1).await, submit_one(&app, 2).await];
    submitted.sort();
    for id in &submitted {
        let job = poll_until(&app, id, Duration::from_secs(120), published).await;
        assert_eq!(job["status"], "succeeded", "{job}");
    }

    // --keep prints without deleting: the same events come back after their visibility.
    let (ok, kept, stderr) = events(&data, &["--keep", "--visibility-seconds", "4"]);
    assert!(ok, "{stderr}");
    assert_eq!(ids(&kept), submitted);
    for event in &kept {
        assert_eq!(event["type"], "job.succeeded", "{event}");
        assert_eq!(event["job"]["id"], event["id"], "{event}");
        assert_eq!(event["job"]["status"], "succeeded", "{event}");
        assert!(event["job"]["outputs"]["video_url"].is_string(), "{event}");
    }
    let (ok, hidden, _) = events(&data, &[]);
    assert!(
        ok && hidden.is_empty(),
        "kept events are hidden: {hidden:?}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;

    // --limit stops early; the rest stays for the next consumer; then the queue is empty.
    let (ok, first, stderr) = events(&data, &["--limit", "1"]);
    assert!(ok && first.len() == 1, "{first:?} {stderr}");
    let (ok, rest, stderr) = events(&data, &[]);
    assert!(ok && rest.len() == 1, "{rest:?} {stderr}");
    assert_eq!(ids(&[first, rest].concat()), submitted);
    let (ok, none, stderr) = events(&data, &[]);
    assert!(
        ok && none.is_empty(),
        "printed events are deleted: {none:?} {stderr}"
    );

    // --follow waits for the next end.
    let follower = Command::new(env!("CARGO_BIN_EXE_minimoto"))
        .args(["events", "--follow", "--limit", "1", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn minimoto events --follow");
    let id = submit_one(&app, 3).await;
    let started = Instant::now();
    let mut follower = Some(follower);
    while follower
        .as_mut()
        .and_then(|f| f.try_wait().expect("try_wait"))
        .is_none()
    {
        if started.elapsed() > Duration::from_secs(120) {
            let mut f = follower.take().expect("follower");
            let _ = f.kill();
            let _ = f.wait();
            panic!("--follow printed nothing in 2 min:\n{}", app.log());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = follower
        .take()
        .expect("follower")
        .wait_with_output()
        .expect("follower output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let event: Value = serde_json::from_str(text.trim()).expect("one JSON line");
    assert_eq!(event["id"], id.as_str(), "{event}");
}
