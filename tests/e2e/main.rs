//! End to end: the real `minimoto serve` binary on port 0, real HTTP, real ffmpeg.

// The AWS runs need a binary built with the AWS backend: `scripts/test` builds with `--all-features`.
mod autoscale;
#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "aws")]
mod aws_api;
#[cfg(feature = "aws")]
mod aws_fleet;
#[path = "../support/clock.rs"]
mod clock;
mod crash;
mod deploy;
mod events;
mod helpers;
mod keys;
mod lifecycle;
#[cfg(feature = "aws")]
#[path = "../../common/aws/tests/support/mod.rs"]
mod moto;
mod outputs;
#[path = "../support/photos.rs"]
mod photos;
mod retention;
mod webhooks;

use std::time::Duration;

use helpers::*;
use image::ImageFormat;
use serde_json::Value;

const SMALL: &str = r#"{"width": 320, "height": 240, "fps": 12, "seconds_per_image": 1.0, "transition": {"kind": "crossfade", "seconds": 0.3}}"#;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn photos_in_video_out() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let app = App::spawn(&tmp.path().join("data"), &[]);
    let images = [
        ("landscape.jpg", jpeg(640, 360, 1)),
        // Named .jpg but a PNG: formats are detected by content.
        ("portrait.jpg", photo(300, 500, 2, ImageFormat::Png)),
        ("square.webp", photo(400, 400, 3, ImageFormat::WebP)),
        ("wide.bmp", photo(500, 200, 4, ImageFormat::Bmp)),
    ];
    let (status, job, location) = submit(&app, form(&images, Some(SMALL))).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    assert_eq!(location.as_deref(), Some(format!("/v1/jobs/{id}").as_str()));
    assert_eq!(job["status"], "queued");
    assert_eq!(job["image_count"], 4);
    assert_eq!(
        job["options"]["fit"], "blur",
        "defaults are filled in: {job}"
    );
    assert_eq!(job["options"]["fps"], 12);

    let job = poll_until(&app, &id, Duration::from_secs(120), finished).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["progress"], 1.0);
    assert!(job["finished_at"].is_string() && job["started_at"].is_string());
    let out = &job["outputs"];
    assert_eq!(
        (out["width"].as_u64(), out["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(
        out["duration_seconds"].as_f64(),
        Some(4.0),
        "4 photos × 1 s"
    );

    let video = tmp.path().join("video.mp4");
    let size = download(out["video_url"].as_str().expect("video_url"), &video).await;
    assert_eq!(Some(size as u64), out["size_bytes"].as_u64());
    let probe = ffprobe(&video);
    let s = &probe["streams"][0];
    assert_eq!(s["codec_name"], "h264");
    assert_eq!(s["pix_fmt"], "yuv420p");
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(
        s["nb_read_frames"], "48",
        "4 photos × 1 s × 12 fps, transitions add no time"
    );
    assert_eq!(s["color_space"], "bt709");
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("duration");
    assert!((duration - 4.0).abs() < 0.05, "duration {duration}");

    let bytes = std::fs::read(&video).expect("read video");
    let at = |atom: &[u8]| {
        bytes
            .windows(4)
            .position(|w| w == atom)
            .expect("atom present")
    };
    assert!(
        at(b"moov") < at(b"mdat"),
        "+faststart: the index comes before the media data"
    );

    // The server's `/metrics` (its own process: nothing else counted): the photos' bytes, and
    // from its workers one render and the frames it made.
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    let ingested = images.iter().map(|(_, b)| b.len()).sum::<usize>();
    for wanted in [
        &format!("minimoto_ingest_bytes_total {ingested}"),
        "minimoto_render_seconds_count 1",
        "minimoto_rendered_frames_total 48",
        r#"minimoto_jobs{status="succeeded"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == wanted),
            "{wanted} missing from:\n{metrics}"
        );
    }

    let poster = tmp.path().join("poster.jpg");
    download(out["poster_url"].as_str().expect("poster_url"), &poster).await;
    let poster = image::open(&poster).expect("poster decodes");
    assert_eq!((poster.width(), poster.height()), (320, 240));

    // The video route redirects to a fresh signed URL that serves byte ranges.
    let res = no_redirects()
        .get(app.url(&format!("/v1/jobs/{id}/video")))
        .send()
        .await
        .expect("GET video");
    assert_eq!(res.status(), 302);
    let to = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let res = reqwest::Client::new()
        .get(&to)
        .header("range", "bytes=0-99")
        .send()
        .await
        .expect("range");
    assert_eq!(res.status(), 206);
    assert_eq!(
        res.headers()["content-range"].to_str().ok(),
        Some(format!("bytes 0-99/{size}").as_str())
    );
    assert_eq!(res.bytes().await.expect("body").len(), 100);

    // Tampered links are refused.
    let tampered = to.replace("video.mp4", "poster.jpg");
    let res = reqwest::get(&tampered).await.expect("tampered");
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let unsigned = to.split('?').next().expect("path").to_owned();
    let res = reqwest::get(&unsigned).await.expect("unsigned");
    assert_eq!(res.status(), 403, "a link without its signature is refused");
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    // A player asking for video gets the redirect, not a 406.
    let res = no_redirects()
        .get(app.url(&format!("/v1/jobs/{id}/video")))
        .header("accept", "video/mp4")
        .send()
        .await
        .expect("GET video as video/mp4");
    assert_eq!(res.status(), 302);
}

/// An iPhone's HEIC becomes a video: read by content, converted by libheif in a child process,
/// reported as ingest found it, and rendered with its own pixels.
#[tokio::test]
async fn a_heic_photo_becomes_a_video() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let app = App::spawn(&tmp.path().join("data"), &[]);
    let images = [
        ("IMG_0001.HEIC", heic(480, 360, 1)),
        ("b.jpg", jpeg(480, 360, 2)),
    ];
    let still = r#"{"width": 320, "height": 240, "fps": 12, "seconds_per_image": 1.0, "motion": "none", "transition": {"kind": "none"}}"#;
    let (status, job, _) = submit(&app, form(&images, Some(still))).await;
    assert_eq!(status, 202, "{job}");
    let first = &job["images"][0];
    assert_eq!(
        (
            first["format"].as_str(),
            first["width"].as_u64(),
            first["height"].as_u64()
        ),
        (Some("heic"), Some(480), Some(360)),
        "{job}"
    );
    let id = job["id"].as_str().expect("id").to_owned();
    let job = poll_until(&app, &id, Duration::from_secs(120), finished).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let video = tmp.path().join("heic.mp4");
    download(job["outputs"]["video_url"].as_str().expect("url"), &video).await;
    // Frame 3 is the HEIC alone: its white corner mark top left, its gradient (blue 40 for
    // seed 1) bottom right; frame 15 is the JPEG (blue 80).
    let frame = |n: u32| {
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&video)
            .args(["-vf", &format!("select=eq(n\\,{n})"), "-frames:v", "1"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .output()
            .expect("ffmpeg");
        assert!(out.status.success() && out.stdout.len() == 320 * 240 * 3);
        out.stdout
    };
    let px = |f: &[u8], x: usize, y: usize| {
        [
            f[(y * 320 + x) * 3],
            f[(y * 320 + x) * 3 + 1],
            f[(y * 320 + x) * 3 + 2],
        ]
    };
    let near =
        |got: [u8; 3], want: [u8; 3]| got.iter().zip(want).all(|(&g, w)| g.abs_diff(w) <= 16);
    let heic_frame = frame(3);
    assert!(
        near(px(&heic_frame, 10, 10), [255, 255, 255]),
        "{:?}",
        px(&heic_frame, 10, 10)
    );
    let corner = px(&heic_frame, 300, 200);
    assert!(near(corner, [239, 212, 40]), "{corner:?}");
    let jpeg_corner = px(&frame(15), 300, 200);
    assert!(near(jpeg_corner, [239, 212, 80]), "{jpeg_corner:?}");
}

/// `kill -9` mid-render: after a restart the job is claimed again once its lease lapses, and
/// succeeds with one set of outputs. A job queued while no worker runs survives the restart too.
#[tokio::test]
async fn jobs_survive_kill_9_and_restarts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let fast = ["--visibility-timeout-seconds", "3"];
    let mut app = App::spawn(&data, &fast);
    let images: Vec<_> = (0..6)
        .map(|i| (format!("{i}.jpg"), jpeg(800, 600, i)))
        .collect();
    let images: Vec<_> = images
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let heavy = r#"{"width": 1280, "height": 720, "fps": 30, "seconds_per_image": 3.0}"#;
    let (status, job, _) = submit(&app, form(&images, Some(heavy))).await;
    assert_eq!(status, 202, "{job}");
    let killed = job["id"].as_str().expect("id").to_owned();
    let running = poll_until(&app, &killed, Duration::from_secs(60), |j| {
        j["stage"] == "rendering" && j["progress"].as_f64().unwrap_or(0.0) > 0.0 || finished(j)
    })
    .await;
    assert_eq!(
        running["status"], "running",
        "the render must still be going to be killed: {running}"
    );
    app.kill_hard();

    // While no worker runs, a second job is queued.
    let mut idle = App::spawn(&data, &["--workers", "0"]);
    let (status, job, _) = submit(&idle, form(&images[..2], Some(SMALL))).await;
    assert_eq!(status, 202, "{job}");
    let queued = job["id"].as_str().expect("id").to_owned();
    assert_eq!(idle.stop().code(), Some(0), "SIGTERM shuts down cleanly");

    let app = App::spawn(&data, &fast);
    for (id, frames) in [(&killed, "540"), (&queued, "24")] {
        let job = poll_until(&app, id, Duration::from_secs(180), finished).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let video = tmp.path().join(format!("{id}.mp4"));
        download(job["outputs"]["video_url"].as_str().expect("url"), &video).await;
        assert_eq!(ffprobe(&video)["streams"][0]["nb_read_frames"], frames);
    }
    let outputs = files_under(&data.join("blobs").join("outputs").join(&killed));
    assert_eq!(outputs, DEFAULT_OUTPUTS, "one set of outputs, no leftovers");
    let db = rusqlite::Connection::open(data.join("minimoto.db")).expect("db");
    let record: String = db
        .query_row("SELECT record FROM jobs WHERE id = ?1", [&killed], |r| {
            r.get(0)
        })
        .expect("record");
    let record: Value = serde_json::from_str(&record).expect("json");
    assert_eq!(
        record["attempts"], 2,
        "claimed once before the kill and once after"
    );
}

/// Without ffmpeg the server refuses to start, saying how to install it — not at the first job.
#[test]
fn missing_ffmpeg_is_a_startup_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minimoto"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path())
        .env("MINIMOTO_FFMPEG", tmp.path().join("no-such-ffmpeg"))
        .output()
        .expect("run minimoto");
    assert!(!out.status.success(), "serve must not start without ffmpeg");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("apt-get install ffmpeg"),
        "the error says how to install it: {stderr}"
    );
    assert!(out.stdout.is_empty(), "it never started listening");
}

/// The API alone (`serve --workers 0`) and a separate `minimoto worker` process share the embedded
/// backend's queue and job table through SQLite.
#[tokio::test]
async fn a_separate_worker_process_renders_the_jobs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let app = App::spawn(&data, &["--workers", "0"]);
    let (status, job, _) = submit(&app, form(&[("a.jpg", jpeg(320, 240, 5))], Some(SMALL))).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();

    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _worker = Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_minimoto"))
            .args(["worker", "--data-dir"])
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn minimoto worker"),
    );
    let job = poll_until(&app, &id, Duration::from_secs(60), finished).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["outputs"]["duration_seconds"].as_f64(), Some(1.0));
}

/// An upload that stops sending is cut off with a 408 problem once the stall timeout passes, and
/// leaves nothing staged.
#[tokio::test]
async fn a_stalled_upload_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let app = App::spawn(&data, &["--workers", "0", "--upload-stall-seconds", "1"]);
    let mut conn = app.raw_connection().await;
    let head = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XYZ\r\n\
                Content-Length: 100000\r\n\r\n--XYZ\r\nContent-Disposition: form-data; name=\"images\"; \
                filename=\"a.jpg\"\r\n\r\nthe first bytes of a photo";
    conn.write_all(head.as_bytes())
        .await
        .expect("send the start of an upload");
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the server must not wait forever for the rest of the body"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("upload-stalled"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "cut off only after the stall timeout"
    );
    let staged = staged_files(&data);
    assert_eq!(staged, Vec::<String>::new(), "nothing staged is left");
}

/// A client that never finishes its request head is disconnected after the header timeout.
#[tokio::test]
async fn a_half_sent_request_head_is_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let tmp = tempfile::tempdir().expect("tempdir");
    let app = App::spawn(
        &tmp.path().join("data"),
        &["--workers", "0", "--header-timeout-seconds", "1"],
    );
    let timeout = Duration::from_secs(1);
    // The server's timer cannot start before the connection exists, and timers never fire early.
    let mut conn = app.raw_connection().await;
    let connected = std::time::Instant::now();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("half a head");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(15), conn.read_to_end(&mut rest)).await;
    let open_for = connected.elapsed();
    assert!(
        closed.is_ok(),
        "the connection must be closed, not held open"
    );
    assert!(
        open_for >= timeout - Duration::from_millis(50),
        "the head has the whole timeout to arrive, but the connection closed after {open_for:?}: {}",
        String::from_utf8_lossy(&rest)
    );
    assert!(
        open_for <= timeout + Duration::from_secs(3),
        "the connection must be closed once the timeout passes, not after {open_for:?}"
    );
    // A complete request on a new connection is still served.
    let (status, health) = get_json(&app.url("/healthz")).await;
    assert_eq!(status, 200, "{health}");
}
