//! The outputs besides a silent MP4 through the whole service: a WebM video with a soundtrack,
//! thumbnails of the poster and the animated preview, each listed in the job with an expiring
//! link that downloads as the file it says it is.

use std::{path::Path, time::Duration};

use image::ImageFormat;
use serde_json::Value;

use crate::helpers::*;

/// Two photos as WebM, two thumbnail sizes (one past the video's size) and a GIF preview.
pub const EXTRAS: &str = r#"{"width": 320, "height": 240, "fps": 12, "seconds_per_image": 1.0,
    "format": "webm", "thumbnails": [64, 400], "preview": {"format": "gif", "seconds": 1, "width": 160}}"#;

/// Downloads every output of the succeeded `job` into `dir` and checks each: the video's codec
/// and frames, each thumbnail's size, the preview's format and size, and the media types served.
pub async fn check_outputs(job: &Value, dir: &Path) {
    let out = &job["outputs"];
    let (format, preview) = (&job["options"]["format"], &job["options"]["preview"]);
    assert_eq!(out["format"], *format, "{job}");
    let (codec, video_type) = match format.as_str() {
        Some("webm") => ("vp9", "video/webm"),
        _ => ("h264", "video/mp4"),
    };
    let ext = format.as_str().expect("format");
    let video = dir.join(format!("video.{ext}"));
    let url = out["video_url"].as_str().expect("video_url");
    assert!(url.contains(&format!("/video.{ext}?")), "{url}");
    assert_eq!(fetch(url, &video).await, video_type);
    let probe = ffprobe(&video);
    assert_eq!(probe["streams"][0]["codec_name"], codec, "{probe}");
    assert_eq!(probe["streams"][0]["nb_read_frames"], "24", "{probe}");
    let sound = match (job["audio"].is_null(), format.as_str()) {
        (true, _) => "",
        (false, Some("webm")) => "opus",
        (false, _) => "aac",
    };
    assert_eq!(audio_codec(&video), sound, "{job}");

    let sizes: Vec<u64> = job["options"]["thumbnails"]
        .as_array()
        .expect("thumbnails option")
        .iter()
        .map(|s| s.as_u64().expect("size"))
        .collect();
    let thumbs = out["thumbnails"].as_array().expect("thumbnails");
    assert_eq!(thumbs.len(), sizes.len(), "{out}");
    for (t, size) in thumbs.iter().zip(sizes) {
        assert_eq!(t["size"], size);
        // 320 × 240: the longest side is the size, or the video's when that is smaller.
        let (w, h) = if size >= 320 {
            (320, 240)
        } else {
            (size, size * 3 / 4)
        };
        assert_eq!(
            (t["width"].as_u64(), t["height"].as_u64()),
            (Some(w), Some(h)),
            "{t}"
        );
        let path = dir.join(format!("thumb-{size}.jpg"));
        assert_eq!(
            fetch(t["url"].as_str().expect("url"), &path).await,
            "image/jpeg"
        );
        let picture = image::open(&path).expect("thumbnail decodes");
        assert_eq!(u64::from(picture.width()), w);
    }

    match preview["format"].as_str() {
        None => assert!(out["preview_url"].is_null(), "{out}"),
        Some(kind) => {
            let path = dir.join(format!("preview.{kind}"));
            let url = out["preview_url"].as_str().expect("preview_url");
            assert_eq!(fetch(url, &path).await, format!("image/{kind}"));
            let expected = match kind {
                "gif" => ImageFormat::Gif,
                _ => ImageFormat::WebP,
            };
            let bytes = std::fs::read(&path).expect("read preview");
            let picture = image::load_from_memory_with_format(&bytes, expected)
                .unwrap_or_else(|e| panic!("the {kind} preview decodes: {e}"));
            let width = preview["width"].as_u64().expect("preview width");
            assert_eq!(u64::from(picture.width()), width);
        }
    }
}

/// The codec of the first audio stream of `video`; empty when it has none.
fn audio_codec(video: &Path) -> String {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=codec_name",
        ])
        .args(["-of", "default=noprint_wrappers=1:nokey=1"])
        .arg(video)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A job of two photos, [`EXTRAS`] and a 0.7 s soundtrack (looped under the 2 s video).
pub fn extras_form() -> reqwest::multipart::Form {
    let images = [("a.jpg", jpeg(640, 480, 1)), ("b.jpg", jpeg(480, 640, 2))];
    form(&images, Some(EXTRAS)).part(
        "audio",
        reqwest::multipart::Part::bytes(tone("mp3", 0.7)).file_name("song.mp3"),
    )
}

/// Downloads `url` to `to`; returns the media type it was served with.
async fn fetch(url: &str, to: &Path) -> String {
    let res = reqwest::get(url).await.expect("download");
    assert_eq!(res.status(), 200, "download {url}");
    let kind = res.headers()["content-type"]
        .to_str()
        .expect("content-type")
        .to_owned();
    std::fs::write(to, res.bytes().await.expect("body")).expect("write download");
    kind
}

#[tokio::test]
async fn webm_with_a_soundtrack_thumbnails_and_a_preview_download_as_what_they_are() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let app = App::spawn(&tmp.path().join("data"), &[]);
    let (status, job, _) = submit(&app, extras_form()).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["audio"]["format"], "mp3", "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    let job = poll_until(&app, &id, Duration::from_secs(120), finished).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    check_outputs(&job, tmp.path()).await;

    // Each output also has a route that redirects to a fresh link, as the video's does.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (route, status, served) in [
        ("poster", 302, Some("image/jpeg")),
        ("preview", 302, Some("image/gif")),
        ("thumbnails/64", 302, Some("image/jpeg")),
        ("thumbnails/400", 302, Some("image/jpeg")),
        ("thumbnails/100", 404, None),
        ("thumbnails/x", 404, None),
    ] {
        let res = client
            .get(app.url(&format!("/v1/jobs/{id}/{route}")))
            .send()
            .await
            .expect("GET");
        assert_eq!(res.status(), status, "{route}");
        if let Some(kind) = served {
            let to = res.headers()["location"]
                .to_str()
                .expect("location")
                .to_owned();
            let file = reqwest::get(&to).await.expect("follow");
            assert_eq!(file.status(), 200, "{route}");
            assert_eq!(file.headers()["content-type"], kind, "{route}");
        }
    }
}

/// The bundled client sends the soundtrack too, and downloads the video it plays under.
#[tokio::test]
async fn the_client_submits_a_soundtrack_and_downloads_the_video() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let app = App::spawn(&tmp.path().join("data"), &[]);
    let (photo, song) = (tmp.path().join("a.jpg"), tmp.path().join("song.flac"));
    std::fs::write(&photo, jpeg(640, 480, 3)).expect("write photo");
    std::fs::write(&song, tone("flac", 5.0)).expect("write song");
    let video = tmp.path().join("out.mp4");
    let options = r#"{"width": 320, "height": 240, "fps": 12, "seconds_per_image": 2.0}"#;
    // The server is another process: blocking this test's thread while the client runs is fine.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minimoto"))
        .arg("submit")
        .arg(&photo)
        .args(["--audio".as_ref(), song.as_os_str()])
        .args([
            "--options",
            options,
            "--server",
            &app.url(""),
            "--wait",
            "-o",
        ])
        .arg(&video)
        .output()
        .expect("minimoto submit runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(audio_codec(&video), "aac");
    assert_eq!(ffprobe(&video)["streams"][0]["nb_read_frames"], "24");
}

/// With `MINIMOTO_LOG_FORMAT=json` every log line is a JSON object, and a request's lines carry
/// its id.
#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let app = App::spawn_with_env(
        &tmp.path().join("data"),
        &["--workers", "0"],
        &[("MINIMOTO_LOG_FORMAT", "json")],
    );
    let images = [("a.jpg", jpeg(320, 240, 1))];
    let res = reqwest::Client::new()
        .post(app.url("/v1/jobs"))
        .header("x-request-id", "trace-json-7")
        .multipart(form(&images, None))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 202);
    assert_eq!(res.headers()["x-request-id"], "trace-json-7");
    let log = app.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let queued = lines
        .iter()
        .find(|l| l["fields"]["message"] == "job queued")
        .unwrap_or_else(|| panic!("no `job queued` line in\n{log}"));
    assert_eq!(queued["span"]["request_id"], "trace-json-7", "{queued}");
    assert_eq!(queued["level"], "INFO");
    // No worker runs here: every line about this job was written by the request, and each
    // names it.
    let id = job_id_of(&queued["fields"]).expect("the line names its job");
    let about: Vec<&Value> = lines
        .iter()
        .filter(|l| job_id_of(&l["fields"]).as_ref() == Some(&id))
        .collect();
    for line in about {
        assert_eq!(line["span"]["request_id"], "trace-json-7", "{line}");
    }
}

/// The job id a log line's fields name.
fn job_id_of(fields: &Value) -> Option<String> {
    fields["job_id"].as_str().map(str::to_owned)
}
