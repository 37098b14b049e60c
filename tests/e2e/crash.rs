//! A crash at each write of the submit and output paths, then a restart: every stored file
//! belongs to a job or is reclaimed, and every job that was created still succeeds.
//!
//! Each test arms one crash point (`minimoto_common::crash`, the `failpoints` feature, which the
//! test command builds with) through `FAILPOINTS`, submits a job, and sees the process abort at
//! that line, as `kill -9` would stop it there. The restarted process sweeps with a 1 s orphan
//! grace, so what no job owns must be gone within seconds.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use crate::{SMALL, helpers::*};

/// How far the submission got when the process died at the point.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Record {
    /// Not written: nothing of the job may remain.
    Absent,
    /// Written, but the client had no answer yet: the job must still succeed.
    Written,
    /// Written and answered (202): the crash is in the worker's output path.
    Answered,
}

/// Job ids with a record, and their status, read from the embedded database.
fn records(data: &Path) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(data.join("minimoto.db")).expect("db");
    let mut stmt = db
        .prepare("SELECT id, status FROM jobs ORDER BY id")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Stored files (relative to the blob root) that belong to no job record, and temporary files.
fn unowned(data: &Path, jobs: &[(String, String)]) -> Vec<String> {
    files_under(&data.join("blobs"))
        .into_iter()
        .filter(|f| {
            let owned = f
                .split('/')
                .nth(1)
                .is_some_and(|id| jobs.iter().any(|(j, _)| j == id));
            !owned || f.contains(".tmp-")
        })
        .collect()
}

async fn crash_at(point: &str, record: Record) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let fast = ["--visibility-timeout-seconds", "3"];
    let mut app = App::spawn_with_env(&data, &fast, &[("FAILPOINTS", &format!("{point}=return"))]);
    let images = [("a.jpg", jpeg(320, 240, 1)), ("b.jpg", jpeg(320, 240, 2))];
    let sent = reqwest::Client::new()
        .post(app.url("/v1/jobs"))
        .multipart(form(&images, Some(SMALL)))
        .send()
        .await;
    let status = app.exited(Duration::from_secs(60)).await;
    assert!(!status.success(), "the crash point {point} fired: {status}");
    assert!(
        app.log().contains(&format!("crash point {point}")),
        "{}",
        app.log()
    );
    match (sent, record) {
        (Ok(res), Record::Answered) => assert_eq!(res.status(), 202),
        (Err(_), Record::Absent | Record::Written) => {}
        (Ok(res), _) => panic!(
            "an answer came before the crash at {point}: {}",
            res.status()
        ),
        (Err(e), Record::Answered) => panic!("no answer before the worker's crash: {e}"),
    }

    let restarted = App::spawn(
        &data,
        &[
            "--visibility-timeout-seconds",
            "3",
            "--orphan-grace-seconds",
            "1",
            "--sweep-interval-seconds",
            "1",
        ],
    );
    let start = Instant::now();
    loop {
        let jobs = records(&data);
        let settled = match record {
            Record::Absent => jobs.is_empty(),
            Record::Written | Record::Answered => jobs.len() == 1 && jobs[0].1 == "succeeded",
        };
        let left = unowned(&data, &jobs);
        let staged = staged_files(&data);
        if settled && left.is_empty() && staged.is_empty() {
            if let Some((id, _)) = jobs.first() {
                let outputs = files_under(&data.join("blobs/outputs").join(id));
                assert_eq!(outputs, DEFAULT_OUTPUTS, "one set of outputs");
                let inputs = files_under(&data.join("blobs/inputs").join(id));
                assert_eq!(inputs, ["0000.jpeg", "0001.jpeg"], "both photos, once");
            }
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "after a crash at {point} and a restart: jobs {jobs:?}, files no job owns {left:?}, \
             scratch {staged:?}\nlog:\n{}",
            restarted.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_crash_after_staging_leaves_nothing() {
    crash_at("submit-staged", Record::Absent).await;
}

#[tokio::test]
async fn a_crash_mid_write_of_a_photo_leaves_no_temporary_file() {
    crash_at("blob-written", Record::Absent).await;
}

#[tokio::test]
async fn a_crash_after_the_first_photo_is_stored_leaves_no_photo() {
    crash_at("submit-photo-stored", Record::Absent).await;
}

#[tokio::test]
async fn a_crash_after_queueing_leaves_no_photo() {
    crash_at("submit-queued", Record::Absent).await;
}

#[tokio::test]
async fn a_crash_after_the_record_is_written_still_renders_the_job() {
    crash_at("submit-created", Record::Written).await;
}

#[tokio::test]
async fn a_crash_between_the_video_and_the_poster_renders_once_more() {
    crash_at("output-video-stored", Record::Answered).await;
}

#[tokio::test]
async fn a_crash_before_the_success_is_recorded_renders_once_more() {
    crash_at("output-stored", Record::Answered).await;
}
