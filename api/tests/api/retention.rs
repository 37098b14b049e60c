//! Retention through the API: a job's files expire a set time after it ends (its outputs answer
//! 410 from then on, and the embedded backend's sweep deletes them), and its record some time
//! later (then 404).

use chrono::Utc;
use minimoto_common::{
    limits::Limits,
    ports::Expiry,
    retention::{Expired, Retention},
};
use minimoto_local::{db::Db, expiry::LocalExpiry, jobs::SqliteJobStore};
use serde_json::Value;

use crate::{
    clock::{time, until},
    photos::{form, jpeg},
    support::{TestApi, no_redirects, succeed_as_worker},
};

async fn get(api: &TestApi, path: &str) -> (u16, Value) {
    let res = no_redirects().get(api.url(path)).send().await.expect("get");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn outputs_expire_with_410_then_the_sweep_deletes_files_and_later_the_record() {
    // Seconds rather than days; long enough for each step below on a loaded machine.
    let retention = Retention {
        files_seconds: 3,
        record_seconds: 6,
    };
    let api =
        TestApi::start_tuned(Limits::default(), |c| c.retention = Some(retention), |p| p).await;
    let res = reqwest::Client::new()
        .post(api.url("/v1/jobs"))
        .multipart(form(&[("a.jpg", jpeg(64, 48, 1))], None))
        .send()
        .await
        .expect("submit");
    assert_eq!(res.status(), 202);
    let job: Value = res.json().await.expect("json");
    let id = job["id"].as_str().expect("id").to_owned();
    assert!(
        job["expires_at"].is_null(),
        "nothing expires before the end: {job}"
    );

    succeed_as_worker(&api, &id).await;
    let (status, job) = get(&api, &format!("/v1/jobs/{id}")).await;
    assert_eq!(status, 200);
    let finished = time(&job["finished_at"]);
    let expires = time(&job["expires_at"]);
    assert_eq!(expires - finished, chrono::Duration::seconds(3), "{job}");
    assert_eq!(
        time(&job["record_expires_at"]) - finished,
        chrono::Duration::seconds(6)
    );
    assert!(job["outputs"]["video_url"].is_string(), "{job}");
    let (status, _) = get(&api, &format!("/v1/jobs/{id}/video")).await;
    assert_eq!(status, 302, "downloadable until it expires");
    // A thumbnail size no job can have is refused before the job is looked at.
    for size in ["15", "2049", "4294967296", "1e2"] {
        let (status, problem) = get(&api, &format!("/v1/jobs/{id}/thumbnails/{size}")).await;
        assert_eq!(status, 404, "{size}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("16–2048")),
            "{problem}"
        );
    }

    until(expires).await;
    let (status, job) = get(&api, &format!("/v1/jobs/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&job["outputs"], &job["outputs_expired"]),
        (&Value::Null, &Value::Bool(true)),
        "{job}"
    );
    for output in ["video", "poster"] {
        let (status, problem) = get(&api, &format!("/v1/jobs/{id}/{output}")).await;
        assert_eq!(status, 410, "{output}: {problem}");
        let detail = problem["detail"].as_str().expect("detail");
        assert!(
            detail.contains("expired at") && detail.contains("keeps them 3 seconds after"),
            "{detail}"
        );
    }

    // The embedded backend's sweep, as `serve` runs it every sweep interval.
    let expiry = LocalExpiry::new(
        SqliteJobStore::new(Db::open(&api.data().join("minimoto.db")).expect("db")),
        api.blobs.clone(),
    );
    let folders = || {
        ["inputs", "outputs"]
            .iter()
            .filter(|p| api.data().join("blobs").join(p).join(&id).exists())
            .count()
    };
    assert_eq!(folders(), 2, "the photos and outputs are there until swept");
    assert_eq!(
        expiry.sweep(Utc::now()).await.expect("sweep"),
        Expired {
            files: 1,
            records: 0
        }
    );
    assert_eq!(folders(), 0, "the sweep deleted them");
    let (status, _) = get(&api, &format!("/v1/jobs/{id}")).await;
    assert_eq!(status, 200, "the record outlives the files");

    until(time(&job["record_expires_at"])).await;
    let (status, _) = get(&api, &format!("/v1/jobs/{id}")).await;
    assert_eq!(
        status, 404,
        "then the job is gone, before storage deletes it"
    );
    let (_, listed) = get(&api, "/v1/jobs").await;
    assert_eq!(listed["jobs"].as_array().map(Vec::len), Some(0), "{listed}");
    assert_eq!(
        expiry.sweep(Utc::now()).await.expect("sweep"),
        Expired {
            files: 0,
            records: 1
        }
    );
    let (status, _) = get(&api, &format!("/v1/jobs/{id}")).await;
    assert_eq!(status, 404);
}
