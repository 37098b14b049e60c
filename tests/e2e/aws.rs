//! The same binary on the AWS backend (S3, DynamoDB, SQS), against a moto server: `setup`,
//! a render end to end with a presigned S3 download, `cleanup`.

use std::{process::Command, time::Duration};

use crate::{helpers::*, moto::Moto, moto::unique};

pub(crate) fn aws_env(moto: &Moto) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("MINIMOTO_S3_BUCKET", unique("media")),
        ("MINIMOTO_DYNAMODB_TABLE", unique("jobs")),
        ("MINIMOTO_SQS_QUEUE", unique("jobs")),
        ("MINIMOTO_DYNAMODB_WORKERS_TABLE", unique("workers")),
        ("MINIMOTO_SQS_EVENTS_QUEUE", unique("events")),
    ]
}

/// The bucket `env` names.
pub(crate) fn bucket_of(env: &[(&'static str, String)]) -> String {
    env.iter()
        .find(|(k, _)| *k == "MINIMOTO_S3_BUCKET")
        .map(|(_, v)| v.clone())
        .expect("the environment names a bucket")
}

/// `env` as the `(name, value)` pairs [`App::spawn_with_env`] takes.
pub(crate) fn refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

pub(crate) fn minimoto(args: &[&str], env: &[(&'static str, String)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_minimoto"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run minimoto");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `minimoto serve --backend aws` on a free port, run to its exit (the tests expect a startup error).
fn serve_aws(data: &std::path::Path, env: &[(&'static str, String)]) -> (bool, String) {
    let data = data.display().to_string();
    minimoto(
        &[
            "serve",
            "--backend",
            "aws",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data,
        ],
        env,
    )
}

fn lines_starting(text: &str, prefix: &str) -> usize {
    text.lines().filter(|l| l.starts_with(prefix)).count()
}

#[tokio::test]
async fn photos_in_video_out_on_aws() {
    let moto = Moto::start();
    let env = aws_env(&moto);
    let bucket = bucket_of(&env);

    // Serving before setup is a clear startup error, not a fallback to the local backend.
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let (ok, text) = serve_aws(&data, &env);
    assert!(!ok && text.contains("minimoto setup"), "{text}");

    // Bucket, jobs and workers tables, queue, dead-letter queue and events queue; then nothing
    // left to do (the launch template is skipped: no worker AMI is given).
    let (ok, text) = minimoto(&["setup"], &env);
    assert!(ok, "{text}");
    assert_eq!(lines_starting(&text, "created "), 6, "{text}");
    let (ok, text) = minimoto(&["setup"], &env);
    assert!(
        ok && lines_starting(&text, "unchanged ") == 6 && text.contains("nothing changed"),
        "setup is idempotent: {text}"
    );

    let env_refs = refs(&env);
    let app = App::spawn_with_env(
        &data,
        &[
            "--backend",
            "aws",
            "--visibility-timeout-seconds",
            "5",
            "--publish-events",
        ],
        &env_refs,
    );
    let images = [("a.jpg", jpeg(640, 480, 1)), ("b.jpg", jpeg(480, 640, 2))];
    let (status, job, _) = submit(&app, form(&images, Some(crate::SMALL))).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    let job = poll_until(&app, &id, Duration::from_secs(120), finished).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let url = job["outputs"]["video_url"].as_str().expect("video_url");
    assert!(
        url.starts_with(&format!(
            "{}/{bucket}/outputs/{id}/video.mp4?",
            moto.endpoint
        )),
        "{url}"
    );
    assert!(
        url.contains("X-Amz-Expires=3600"),
        "a presigned URL valid for the configured hour: {url}"
    );
    let video = tmp.path().join("aws.mp4");
    download(url, &video).await;
    assert_eq!(ffprobe(&video)["streams"][0]["nb_read_frames"], "24");
    let first = id;
    // A WebM with a soundtrack, thumbnails and a preview: stored in S3 under the types they are
    // served with.
    let (status, job, _) = submit(&app, crate::outputs::extras_form()).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    let job = poll_until(&app, &id, Duration::from_secs(120), finished).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    crate::outputs::check_outputs(&job, tmp.path()).await;
    let second = id;

    // Both ends were published on the stack's SQS events queue; `minimoto events` prints and
    // deletes them.
    for id in [&first, &second] {
        poll_until(&app, id, Duration::from_secs(30), |j| {
            j["queue_event"]["state"] == "delivered"
        })
        .await;
    }
    let data_arg = data.display().to_string();
    let consume = ["events", "--backend", "aws", "--data-dir", &data_arg];
    let (ok, text) = minimoto(&consume, &env);
    assert!(ok, "{text}");
    let mut ids: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let event: serde_json::Value = serde_json::from_str(l).expect("an event's JSON");
            assert_eq!(event["type"], "job.succeeded", "{event}");
            event["id"].as_str().expect("id").to_owned()
        })
        .collect();
    ids.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(ids, expected, "{text}");
    let (ok, text) = minimoto(&consume, &env);
    assert!(
        ok && !text.contains('{'),
        "printed events are deleted: {text}"
    );
    drop(app);

    let (ok, text) = minimoto(&["cleanup", "--dry-run"], &env);
    assert!(
        ok && lines_starting(&text, "would delete ") == 6 && text.contains("nothing deleted"),
        "{text}"
    );
    let (ok, text) = minimoto(&["cleanup"], &env);
    assert!(ok && lines_starting(&text, "deleted ") == 6, "{text}");
    let (ok, text) = minimoto(&["cleanup"], &env);
    assert!(ok && text.contains("nothing to delete"), "{text}");
}

#[test]
fn the_aws_backend_refuses_a_bad_stack_name_before_any_call() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ok, text) = serve_aws(tmp.path(), &[("MINIMOTO_STACK", "Prod Stack".into())]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("stack `Prod Stack`") && text.contains("lowercase"),
        "the error names the setting and the rule: {text}"
    );
}
