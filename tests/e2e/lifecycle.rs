//! Deleting a job whose render is under way, through the real binary: the render stops within
//! seconds (its encoder exits), nothing of its outputs stays, and the worker takes the next job.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn deleting_a_running_job_stops_its_render_within_seconds() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    // Heartbeats every 60 s: a worker that only learnt of the cancel at its next beat would go on
    // for up to a minute.
    let app = App::spawn(
        &data,
        &["--workers", "1", "--visibility-timeout-seconds", "240"],
    );
    // Three minutes of 720p at the slow preset: minutes of work, far longer than the test waits.
    let long =
        r#"{"width": 1280, "height": 720, "fps": 30, "seconds_per_image": 60, "quality": "high"}"#;
    let images = [
        ("a.jpg", jpeg(640, 360, 1)),
        ("b.jpg", jpeg(640, 360, 2)),
        ("c.jpg", jpeg(640, 360, 3)),
    ];
    let (status, job, _) = submit(&app, form(&images, Some(long))).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    // Rendering: the encoder runs as a child. (Stage and progress are published at heartbeats,
    // a minute apart here.)
    let running = poll_until(&app, &id, Duration::from_secs(60), |j| {
        finished(j) || !children_of(app.pid()).is_empty()
    })
    .await;
    assert_eq!(running["status"], "running", "{running}");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let res = reqwest::Client::new()
        .delete(app.url(&format!("/v1/jobs/{id}")))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(res.status().as_u16(), 200);
    let stopped = encoder_stopped(&app).await;
    eprintln!("render stopped {stopped:?} after the DELETE");

    // The worker moves on.
    let (status, next, _) = submit(&app, form(&images[..1], Some(SHORT))).await;
    assert_eq!(status, 202, "{next}");
    let next_id = next["id"].as_str().expect("id").to_owned();
    let next = poll_until(&app, &next_id, Duration::from_secs(60), finished).await;
    assert_eq!(next["status"], "succeeded", "{next}");

    let (_, job) = get_json(&app.url(&format!("/v1/jobs/{id}"))).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    let left: Vec<_> = files_under(&data.join("blobs"))
        .into_iter()
        .filter(|f| f.contains(&id))
        .collect();
    assert!(left.is_empty(), "files of the deleted job remain: {left:?}");
}

const SHORT: &str = r#"{"width": 160, "height": 120, "fps": 12, "seconds_per_image": 1.0}"#;
