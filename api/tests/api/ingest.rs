//! Receiving submissions, in-process: every rejected one answers with a problem naming what was
//! wrong and leaves nothing behind (no staged upload, no blob, no message, no job). The stalled
//! upload stays a process test (`tests/e2e`), like signals and `kill -9`.

use std::path::Path;

use crate::photos::{form, jpeg, photo};
use crate::support::{TestApi, no_redirects};
use image::ImageFormat;
use minimoto_common::limits::Limits;
use serde_json::Value;

/// What `minimoto serve --max-image-bytes 200000 --max-image-pixels 4000000` enforces.
fn limits() -> Limits {
    Limits {
        max_image_bytes: 200_000,
        max_image_pixels: 4_000_000,
        ..Limits::default()
    }
}

async fn submit(api: &TestApi, form: reqwest::multipart::Form) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(api.url("/v1/jobs"))
        .multipart(form)
        .send()
        .await
        .expect("POST /v1/jobs");
    let status = res.status().as_u16();
    (status, res.json().await.expect("json body"))
}

async fn get_json(url: &str) -> (u16, Value) {
    let res = reqwest::get(url).await.expect("GET");
    let status = res.status().as_u16();
    (status, res.json().await.expect("json body"))
}

/// Everything under `dir` (files and directories, so an empty upload directory counts too),
/// relative, sorted; nothing if `dir` does not exist.
fn entries_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            out.push(
                p.strip_prefix(root)
                    .expect("under root")
                    .display()
                    .to_string(),
            );
            if p.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Files under `dir` (the blob store keeps its directories), relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    entries_under(dir)
        .into_iter()
        .filter(|f| dir.join(f).is_file())
        .collect()
}

/// No staged upload, no blob, no message and no job row.
async fn assert_nothing_left(api: &TestApi, what: &str) {
    let data = api.data();
    // The ingest stages each upload in `scratch/upload-*/`, removed with the `Upload`.
    assert_eq!(
        entries_under(&data.join("scratch")),
        Vec::<String>::new(),
        "{what}: no staged upload may be left"
    );
    assert_eq!(
        files_under(&data.join("blobs")),
        Vec::<String>::new(),
        "{what}: no blob may be left"
    );
    let depth = api.queue.depth().await.expect("queue depth");
    assert_eq!(
        (depth.visible, depth.in_flight, depth.dead),
        (0, 0, 0),
        "{what}: no message may be left"
    );
    let db = rusqlite::Connection::open(data.join("minimoto.db")).expect("open db");
    let jobs: i64 = db
        .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
        .expect("count");
    assert_eq!(jobs, 0, "{what}: no job may be left");
}

/// One photo and a soundtrack.
fn with_audio(photo: &[u8], name: &str, audio: Vec<u8>) -> reqwest::multipart::Form {
    form(&[("a.jpg", photo.to_vec())], None).part(
        "audio",
        reqwest::multipart::Part::bytes(audio).file_name(name.to_owned()),
    )
}

#[tokio::test]
async fn a_soundtrack_is_checked_stored_and_reported() {
    let api = TestApi::start(limits()).await;
    let song = crate::photos::tone("mp3", 2.0);
    let (status, job) = submit(&api, with_audio(&jpeg(64, 48, 1), "song.mp3", song.clone())).await;
    assert_eq!(status, 202, "{job}");
    let audio = &job["audio"];
    assert_eq!(audio["file_name"], "song.mp3", "{job}");
    assert_eq!(
        (audio["format"].as_str(), audio["codec"].as_str()),
        (Some("mp3"), Some("mp3"))
    );
    assert_eq!(audio["sample_rate"], 44_100);
    assert_eq!(audio["bytes"], song.len());
    let seconds = audio["duration_seconds"].as_f64().expect("a duration");
    assert!((seconds - 2.0).abs() < 0.1, "{seconds}");
    let id = job["id"].as_str().expect("id");
    let stored = api.data().join(format!("blobs/inputs/{id}/audio.mp3"));
    assert_eq!(
        std::fs::read(&stored).expect("stored beside the photos"),
        song
    );
    // A job without one says so.
    let (_, silent) = submit(&api, form(&[("a.jpg", jpeg(64, 48, 2))], None)).await;
    assert!(silent["audio"].is_null(), "{silent}");
}

/// Every rejected submission answers with a problem naming what was wrong, and leaves no blob,
/// no job and no message behind.
#[tokio::test]
async fn rejected_requests_leave_nothing_behind() {
    let api = TestApi::start(limits()).await;
    let good = jpeg(64, 48, 1);
    let mut truncated = jpeg(640, 480, 2);
    truncated.truncate(truncated.len() / 2);
    let bomb = bomb_png(50_000, 50_000);
    let big = photo(400, 300, 3, ImageFormat::Bmp);
    assert!(
        big.len() > 200_000,
        "the over-size photo must be over the limit: {}",
        big.len()
    );

    let damaged_flac = {
        let mut bytes = crate::photos::tone("flac", 2.0);
        let from = bytes.len() / 10;
        for (i, b) in bytes[from..].iter_mut().enumerate() {
            *b = (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0];
        }
        bytes
    };
    let cases: Vec<(&str, reqwest::multipart::Form, u16, &str, &str)> = vec![
        (
            "zero images",
            form(&[], Some("{}")),
            400,
            "no-images",
            "at least one photo",
        ),
        (
            "not an image",
            form(
                &[
                    ("a.jpg", good.clone()),
                    ("notes.jpg", b"hello, not a photo".to_vec()),
                ],
                None,
            ),
            415,
            "image-unsupported",
            "image 2 (notes.jpg)",
        ),
        (
            "truncated",
            form(&[("t.jpg", truncated)], None),
            422,
            "image-corrupt",
            "image 1",
        ),
        (
            "bomb",
            form(&[("bomb.png", bomb)], None),
            413,
            "image-too-large",
            "4000000",
        ),
        (
            "over-size file",
            form(&[("big.bmp", big)], None),
            413,
            "image-too-large",
            "200000 bytes",
        ),
        (
            "bad options",
            form(
                &[("a.jpg", good.clone())],
                Some(r#"{"fps": 0, "width": 321}"#),
            ),
            422,
            "invalid-options",
            "2 render options",
        ),
        (
            "unknown option",
            form(&[("a.jpg", good.clone())], Some(r#"{"fsp": 24}"#)),
            422,
            "invalid-options",
            "fsp",
        ),
        (
            "options not json",
            form(&[("a.jpg", good.clone())], Some("fps=24")),
            422,
            "invalid-options",
            "options",
        ),
        (
            "unknown part",
            form(&[("a.jpg", good.clone())], None).text("music", "x"),
            400,
            "unexpected-part",
            "`music`",
        ),
        (
            "audio that is not audio",
            with_audio(&good, "notes.mp3", b"just some text".to_vec()),
            415,
            "audio-unsupported",
            "audio (notes.mp3)",
        ),
        (
            "damaged audio",
            with_audio(&good, "broken.flac", damaged_flac.clone()),
            422,
            "audio-corrupt",
            "audio (broken.flac)",
        ),
    ];
    for (what, form, status, code, detail) in cases {
        let (got, body) = submit(&api, form).await;
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(body["code"], code, "{what}: {body}");
        let text = body["detail"].as_str().expect("detail");
        assert!(
            text.contains(detail),
            "{what}: detail {text:?} should mention {detail:?}"
        );
        assert_nothing_left(&api, what).await;
    }
    assert!(
        api.data().join("scratch").is_dir(),
        "the uploads were staged under scratch/, so its emptiness means they were removed"
    );
    let res = reqwest::Client::new()
        .post(api.url("/v1/jobs"))
        .body("{}")
        .send()
        .await
        .expect("post json");
    assert_eq!(res.status(), 415, "a non-multipart body");
    assert_nothing_left(&api, "a non-multipart body").await;

    // A good one still goes through, and the other routes answer in problem+json.
    let (status, job) = submit(&api, form(&[("a.jpg", good)], None)).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(
        entries_under(&api.data().join("scratch")),
        Vec::<String>::new(),
        "a stored upload leaves nothing staged either"
    );
    let id = job["id"].as_str().expect("id");
    let res = no_redirects()
        .get(api.url(&format!("/v1/jobs/{id}/video")))
        .send()
        .await
        .expect("video");
    assert_eq!(res.status(), 409, "no video while queued");
    let (status, body) = get_json(&api.url("/v1/jobs/0193a0f2-5e3c-7b51-9c1e-2f4d8f7a6b10")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not-found")));
    let (status, _) = get_json(&api.url("/v1/jobs/not-a-uuid")).await;
    assert_eq!(status, 404);
    let res = reqwest::Client::new()
        .get(api.url(&format!("/v1/jobs/{id}")))
        .header("accept", "text/html")
        .send()
        .await
        .expect("get html");
    assert_eq!(
        res.status(),
        406,
        "JSON routes refuse clients that cannot take JSON"
    );
    let res = reqwest::Client::new()
        .delete(api.url("/healthz"))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

/// A PNG whose header claims `w`×`h` pixels, with a tiny body: a decompression bomb.
fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    let mut png = photo(1, 1, 0, ImageFormat::Png);
    // IHDR data starts at byte 16 (8 signature + 4 length + 4 type); its CRC follows the 13 bytes.
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test]
async fn a_size_preset_is_resolved_and_echoed_in_the_jobs_options() {
    let api = TestApi::start(limits()).await;
    let good = jpeg(64, 48, 1);
    let options = r#"{"resolution": "1080p", "aspect": "9:16", "transition": {"kind": "random"},
        "motion": "pan-left", "motion_strength": 0.5, "quality": "draft"}"#;
    let (status, job) = submit(&api, form(&[("a.jpg", good)], Some(options))).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("id");
    let (status, job) = get_json(&api.url(&format!("/v1/jobs/{id}"))).await;
    assert_eq!(status, 200, "{job}");
    let o = &job["options"];
    assert_eq!(
        (o["width"].as_u64(), o["height"].as_u64()),
        (Some(1080), Some(1920)),
        "{o}"
    );
    assert_eq!(
        (o["resolution"].as_str(), o["aspect"].as_str()),
        (Some("1080p"), Some("9:16"))
    );
    assert_eq!(o["transition"]["kind"], "random");
    assert_eq!(o["motion"], "pan-left");
    assert_eq!(o["motion_strength"], 0.5);
    assert_eq!(o["quality"], "draft");
}

#[tokio::test]
async fn photos_are_ordered_by_name_or_by_date_taken_and_their_durations_follow() {
    use crate::photos::jpeg_taken;
    let api = TestApi::start(limits()).await;
    // Durations in upload order; the job's options list them in the video's order.
    let submit_ordered = |photos: Vec<(&'static str, Vec<u8>)>, order: &str| {
        let options = format!(r#"{{"order": "{order}", "durations": [1, 2, 3, 4]}}"#);
        let api = &api;
        async move {
            let (status, job) = submit(api, form(&photos, Some(&options))).await;
            assert_eq!(status, 202, "{job}");
            let id = job["id"].as_str().expect("id").to_owned();
            let (_, job) = get_json(&api.url(&format!("/v1/jobs/{id}"))).await;
            job
        }
    };
    let durations = |job: &Value| job["options"]["durations"].clone();
    let named = vec![
        ("IMG_10.jpg", jpeg(64, 48, 1)),
        ("IMG_2.jpg", jpeg(64, 48, 2)),
        ("img_1.jpg", jpeg(64, 48, 3)),
        ("IMG_9.jpg", jpeg(64, 48, 4)),
    ];
    // Numbers by value, whatever the case: img_1, IMG_2, IMG_9, IMG_10.
    let by_name = submit_ordered(named.clone(), "filename").await;
    assert_eq!(durations(&by_name), serde_json::json!([3.0, 2.0, 4.0, 1.0]));
    let names: Vec<&str> = by_name["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| i["file_name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["img_1.jpg", "IMG_2.jpg", "IMG_9.jpg", "IMG_10.jpg"]);
    assert_eq!(
        durations(&submit_ordered(named, "upload").await),
        serde_json::json!([1.0, 2.0, 3.0, 4.0])
    );
    let dated = vec![
        ("a.jpg", jpeg_taken(64, 48, 1, "2024:05:17 09:30:00")),
        ("b.jpg", jpeg(64, 48, 2)), // no date: last
        ("c.jpg", jpeg_taken(64, 48, 3, "2023:12:31 23:59:59")),
        ("d.jpg", jpeg_taken(64, 48, 4, "2024:05:17 09:29:59")),
    ];
    let by_date = submit_ordered(dated, "taken").await;
    assert_eq!(durations(&by_date), serde_json::json!([3.0, 4.0, 1.0, 2.0]));
    // Each photo as ingest found it, in the video's order.
    let first = &by_date["images"][0];
    assert_eq!(first["file_name"], "c.jpg", "{by_date}");
    assert_eq!(first["taken"], "2023-12-31T23:59:59");
    assert_eq!(
        (
            first["format"].as_str(),
            first["width"].as_u64(),
            first["height"].as_u64()
        ),
        (Some("jpeg"), Some(64), Some(48))
    );
    assert_eq!(first["orientation"], 1);
    assert!(first["bytes"].as_u64().is_some_and(|b| b > 100), "{first}");
    assert_eq!(by_date["images"][3]["taken"], Value::Null);
}
