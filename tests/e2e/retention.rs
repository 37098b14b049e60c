//! Retention through the real binary on the embedded backend: `--retention-days` in a fraction
//! of a day, and the sweep `serve` runs deleting the files once the job's `expires_at` passed.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{
    clock::{time, until},
    helpers::*,
    no_redirects,
};

#[tokio::test]
async fn the_served_sweep_deletes_what_retention_expired() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    // 0.0001 days is 8.64 s, kept to the second: 9 s (time enough to look before it ends).
    let app = App::spawn(
        &data,
        &[
            "--retention-days",
            "0.0001",
            "--sweep-interval-seconds",
            "1",
        ],
    );
    let options = r#"{"width": 160, "height": 120, "fps": 12, "seconds_per_image": 1.0}"#;
    let (status, job, _) = submit(&app, form(&[("a.jpg", jpeg(320, 240, 1))], Some(options))).await;
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
    let files = || -> Vec<String> {
        files_under(&data.join("blobs"))
            .into_iter()
            .filter(|f| f.contains(&id))
            .collect()
    };
    // Photo, video, poster, three thumbnails.
    assert_eq!(files().len(), 6, "{:?}", files());

    until(expires).await;
    let res = no_redirects()
        .get(app.url(&format!("/v1/jobs/{id}/video")))
        .send()
        .await
        .expect("GET video");
    assert_eq!(res.status().as_u16(), 410);
    let problem: Value = res.json().await.expect("problem");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("keeps them 9 seconds after")),
        "{problem}"
    );
    // The sweep runs every second: the files go within a few (and it logs once they went).
    let start = Instant::now();
    while !files().is_empty() || !app.log().contains("deleted what retention expired") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still there after {:?}: {:?}\nlog:\n{}",
            start.elapsed(),
            files(),
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, job) = get_json(&app.url(&format!("/v1/jobs/{id}"))).await;
    assert_eq!(status, 200, "the record outlives the files: {job}");
    assert_eq!(job["outputs_expired"], true, "{job}");
}
