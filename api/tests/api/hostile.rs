//! What a hostile or broken client gets: bounded buffers, a floor rate, a cap on uploads in
//! flight, problem+json for every error (also those the HTTP layer answers itself), RFC 9110
//! ranges on downloads, and nothing left behind.

use std::{path::Path, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::Utc;
use minimoto_common::{
    Error, JobId, Result,
    job::{Job, Outputs},
    limits::Limits,
    ports::{BlobStore, JobQuery, JobStore, KeyClaim, SignedUrl},
    spec::RenderSpec,
};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::TestApi;

/// `POST /v1/jobs` with `form`.
async fn post_job(api: &TestApi, form: reqwest::multipart::Form) -> reqwest::Response {
    reqwest::Client::new()
        .post(api.url("/v1/jobs"))
        .multipart(form)
        .send()
        .await
        .expect("post")
}

/// A form with one small photo, the shared test JPEG.
fn one_photo_form(name: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        "images",
        reqwest::multipart::Part::bytes(crate::photos::jpeg(64, 48, 1)).file_name(name.to_owned()),
    )
}

/// A raw HTTP/1.1 answer: status, lower-cased head, body.
struct Raw {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    fn is_problem(&self) -> bool {
        self.head.contains("content-type: application/problem+json")
    }
}

/// Reads one answer (the server closes, or the body is as long as Content-Length says).
async fn read_answer(stream: &mut TcpStream) -> Raw {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk))
            .await
            .expect("an answer within 30 s")
            .unwrap_or(0);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if n == 0 || len.is_some_and(|len| buf.len() >= end + 4 + len) {
                let status = head[9..12].parse().expect("status");
                let body = buf[end + 4..].to_vec();
                return Raw { status, head, body };
            }
        }
        assert!(n > 0, "connection closed without an answer");
    }
}

/// Sends `head` then `body` in pieces, ignoring write errors (the server may answer and close
/// before the body is done), then reads the answer.
async fn raw(api: &TestApi, head: &str, body: &[u8]) -> Raw {
    let addr = api.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    for piece in body.chunks(64 * 1024) {
        if stream.write_all(piece).await.is_err() {
            break;
        }
    }
    read_answer(&mut stream).await
}

fn multipart_head(len: usize) -> String {
    format!(
        "POST /v1/jobs HTTP/1.1\r\nhost: x\r\ncontent-type: multipart/form-data; boundary=XyZ\r\ncontent-length: {len}\r\n\r\n"
    )
}

#[tokio::test]
async fn errors_the_http_layer_answers_itself_are_problems_too() {
    let api = TestApi::start(Limits::default()).await;
    // A Content-Length over the body cap is refused before the body is read.
    let big = 64u64 << 30;
    let answer = raw(&api, &multipart_head(big as usize), b"").await;
    assert_eq!(answer.status, 413);
    assert!(answer.is_problem(), "{}", answer.head);
    assert_eq!(answer.json()["code"], "upload-too-large");
    assert!(answer.head.contains("x-content-type-options: nosniff"));

    // A path that is not UTF-8.
    let answer = raw(&api, "GET /v1/jobs/%FF%FE HTTP/1.1\r\nhost: x\r\n\r\n", b"").await;
    assert_eq!(
        answer.status,
        400,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(answer.is_problem(), "{}", answer.head);
    assert_eq!(answer.json()["code"], "bad-request");

    // Success answers are not sniffed either.
    let res = reqwest::get(api.url("/healthz")).await.expect("get");
    assert_eq!(
        res.headers()
            .get("x-content-type-options")
            .map(|v| v.as_bytes()),
        Some(&b"nosniff"[..])
    );
}

/// A value of the wrong type deep in the options is named by its path, over HTTP as in the
/// parser, and nothing is stored.
#[tokio::test]
async fn a_nested_value_of_the_wrong_type_is_named_by_its_path() {
    let api = TestApi::start(Limits::default()).await;
    for (options, field) in [
        (
            r#"{"transition": {"seconds": "long"}}"#,
            "transition.seconds",
        ),
        (r#"{"thumbnails": [100, "big"]}"#, "thumbnails[1]"),
        (r#"{"preview": {"width": -5}}"#, "preview.width"),
    ] {
        let form = reqwest::multipart::Form::new()
            .part(
                "images",
                reqwest::multipart::Part::bytes(crate::photos::jpeg(64, 48, 1)).file_name("a.jpg"),
            )
            .text("options", options);
        let res = post_job(&api, form).await;
        assert_eq!(res.status(), 422, "{options}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["code"], "invalid-options", "{body}");
        assert_eq!(body["errors"][0]["field"], field, "{options}: {body}");
    }
    assert!(leftovers(&api).is_empty(), "{:?}", leftovers(&api));
}

#[tokio::test]
async fn options_sent_as_an_array_are_refused_not_applied_by_position() {
    let api = TestApi::start(Limits::default()).await;
    let form = reqwest::multipart::Form::new()
        .part(
            "images",
            reqwest::multipart::Part::bytes(crate::photos::jpeg(64, 48, 1)).file_name("a.jpg"),
        )
        .text("options", "[1920, 1080, 30]");
    let res = post_job(&api, form).await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["code"], "invalid-options");
    assert_eq!(body["errors"][0]["field"], "options");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("an array"),
        "{body}"
    );
}

#[tokio::test]
async fn a_job_too_heavy_to_render_in_minutes_is_refused_at_submit() {
    let api = TestApi::start(Limits::default()).await;
    let mut form = reqwest::multipart::Form::new().text(
        "options",
        r#"{"width": 3840, "height": 2160, "fps": 60, "seconds_per_image": 60}"#,
    );
    for i in 0..3 {
        form = form.part(
            "images",
            reqwest::multipart::Part::bytes(crate::photos::jpeg(64, 48, 1))
                .file_name(format!("{i}.jpg")),
        );
    }
    let res = post_job(&api, form).await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["errors"][0]["field"], "seconds_per_image", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("megapixel-frames"),
        "{body}"
    );
    assert_eq!(api.queue.depth().await.expect("depth").visible, 0);
}

/// Files left in the API's data dir, besides the database and the (empty) scratch dir.
fn leftovers(api: &TestApi) -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["blobs", "scratch"] {
        let root = api.data().join(dir);
        for entry in walk(&root) {
            out.push(entry);
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[tokio::test]
async fn an_unterminated_part_header_is_cut_at_its_limit() {
    let api = TestApi::start(Limits::default()).await;
    // A part whose headers never end: 8 MiB of one header line.
    let mut body =
        b"--XyZ\r\ncontent-disposition: form-data; name=\"images\"; filename=\"a.jpg\"\r\nx-pad: "
            .to_vec();
    body.resize(body.len() + (8 << 20), b'a');
    let answer = raw(&api, &multipart_head(body.len() + 100), &body).await;
    assert_eq!(
        answer.status,
        413,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let problem = answer.json();
    assert_eq!(problem["code"], "part-headers-too-large");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("1048576 bytes"),
        "{problem}"
    );
    assert!(leftovers(&api).is_empty(), "{:?}", leftovers(&api));

    // The same for a preamble that never reaches the first boundary.
    let preamble = vec![b'p'; 8 << 20];
    let answer = raw(&api, &multipart_head(preamble.len() + 100), &preamble).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["code"], "part-headers-too-large");
}

/// The request timeout bounds how long the server takes to answer, not how long a client takes
/// to send: an upload slower than it (but within the stall time and the floor rate) is taken.
#[tokio::test]
async fn an_upload_longer_than_the_request_timeout_is_taken() {
    let api = TestApi::start_tuned(
        Limits::default(),
        |c| c.request_timeout = Duration::from_millis(300),
        |p| p,
    )
    .await;
    let photo = crate::photos::jpeg(64, 48, 1);
    let mut body = b"--XyZ\r\ncontent-disposition: form-data; name=\"images\"; filename=\"a.jpg\"\r\ncontent-type: image/jpeg\r\n\r\n".to_vec();
    body.extend_from_slice(&photo);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let addr = api.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(multipart_head(body.len()).as_bytes())
        .await
        .expect("head");
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(first).await.expect("first half");
    // Three times the request timeout between the halves.
    tokio::time::sleep(Duration::from_millis(900)).await;
    stream.write_all(rest).await.expect("second half");
    let answer = read_answer(&mut stream).await;
    assert_eq!(
        answer.status,
        202,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
}

#[tokio::test]
async fn a_drip_just_inside_the_stall_time_is_cut_by_the_floor_rate() {
    let api = TestApi::start_tuned(
        Limits::default(),
        |c| {
            c.upload_stall = Duration::from_secs(1);
            c.upload_min_rate = 100_000;
        },
        |p| p,
    )
    .await;
    let addr = api.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(multipart_head(1 << 20).as_bytes())
        .await
        .expect("head");
    stream
        .write_all(
            b"--XyZ\r\ncontent-disposition: form-data; name=\"images\"; filename=\"a.jpg\"\r\n\r\n",
        )
        .await
        .expect("part head");
    // One byte every 0.6 s: never silent for the 1 s stall time, ~2 bytes/s on average.
    let started = std::time::Instant::now();
    let answer = loop {
        tokio::time::sleep(Duration::from_millis(600)).await;
        if stream.write_all(b"x").await.is_err() || started.elapsed() > Duration::from_secs(20) {
            break read_answer(&mut stream).await;
        }
        let mut peek = [0u8; 1];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(1), stream.peek(&mut peek)).await
            && n > 0
        {
            break read_answer(&mut stream).await;
        }
    };
    assert_eq!(
        answer.status,
        408,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let problem = answer.json();
    assert_eq!(problem["code"], "upload-too-slow");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("100000 bytes/s"),
        "{problem}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cut within a few windows"
    );
    assert!(leftovers(&api).is_empty(), "{:?}", leftovers(&api));
}

#[tokio::test]
async fn uploads_beyond_the_cap_are_told_to_come_back() {
    let api = TestApi::start_tuned(Limits::default(), |c| c.max_uploads = 1, |p| p).await;
    // One upload holds the only slot, sending slowly but above the floor.
    let addr = api.base.trim_start_matches("http://").to_owned();
    let mut held = TcpStream::connect(addr).await.expect("connect");
    held.write_all(multipart_head(1 << 20).as_bytes())
        .await
        .expect("head");
    held.write_all(
        b"--XyZ\r\ncontent-disposition: form-data; name=\"images\"; filename=\"a.jpg\"\r\n\r\nsome",
    )
    .await
    .expect("part");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let form = one_photo_form("b.jpg");
    let res = post_job(&api, form).await;
    assert_eq!(res.status(), 503);
    assert_eq!(
        res.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"5"[..])
    );
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["code"], "server-busy");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("1 uploads"),
        "{body}"
    );

    // Once the first is gone, the slot is free again.
    drop(held);
    let mut accepted = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let form = one_photo_form("b.jpg");
        let res = post_job(&api, form).await;
        if res.status() == 202 {
            accepted = true;
            break;
        }
    }
    assert!(accepted, "the slot was never given back");
}

/// A blob store whose writes fail as a full disk does; reads and deletes work.
#[derive(Debug)]
struct Full(Arc<dyn BlobStore>);

#[async_trait]
impl BlobStore for Full {
    async fn put_file(&self, _: &str, _: &Path, _: &str) -> Result<u64> {
        Err(std::io::Error::from(std::io::ErrorKind::StorageFull).into())
    }
    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
        self.0.get_to_file(key, path).await
    }
    async fn size(&self, key: &str) -> Result<Option<u64>> {
        self.0.size(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        self.0.delete_prefix(prefix).await
    }
    async fn folders(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        self.0.folders(prefix, after, limit).await
    }
    async fn remove_debris(&self, older_than: Duration) -> Result<u64> {
        self.0.remove_debris(older_than).await
    }
    async fn url(&self, key: &str, ttl: Duration) -> Result<SignedUrl> {
        self.0.url(key, ttl).await
    }
    async fn ready(&self) -> Result<()> {
        self.0.ready().await
    }
}

#[tokio::test]
async fn full_storage_is_a_507_that_says_so_and_keeps_nothing() {
    let api = TestApi::start_with(Limits::default(), |mut p| {
        p.blobs = Arc::new(Full(p.blobs.clone()));
        p
    })
    .await;
    let form = one_photo_form("a.jpg");
    let res = post_job(&api, form).await;
    assert_eq!(res.status(), 507);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["code"], "storage-full");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("full"),
        "{body}"
    );
    assert_eq!(api.queue.depth().await.expect("depth").visible, 0);
    assert!(leftovers(&api).is_empty(), "{:?}", leftovers(&api));
    // The mapping of the staging disk itself.
    let e = minimoto_api::ApiError::staging(std::io::ErrorKind::StorageFull.into());
    assert_eq!(e.code.as_str(), "storage-full");
    assert!(matches!(
        Error::from(std::io::Error::from(std::io::ErrorKind::QuotaExceeded)),
        Error::StorageFull { .. }
    ));
}

/// A job that succeeded, with its outputs stored (or not) under the real layout.
async fn succeeded_job(api: &TestApi, store_video: bool) -> JobId {
    let id = JobId::new();
    let mut job = Job::new(id, RenderSpec::default(), vec![], Utc::now());
    let now = Utc::now();
    job.claim("w", now, chrono::Duration::seconds(60))
        .expect("claim");
    let outputs = Outputs {
        video_key: minimoto_common::layout::video(id, minimoto_common::spec::Format::Mp4),
        poster_key: minimoto_common::layout::poster(id),
        thumbnails: Vec::new(),
        preview_key: None,
        duration_seconds: 3.0,
        width: 1280,
        height: 720,
        frames: 90,
        size_bytes: 10,
    };
    if store_video {
        let file = api.data().join("video-src");
        std::fs::write(&file, b"0123456789").expect("write");
        api.blobs
            .put_file(&outputs.video_key, &file, "video/mp4")
            .await
            .expect("put");
    }
    job.succeed("w", outputs, now).expect("succeed");
    api.jobs.create(&job).await.expect("create");
    id
}

#[tokio::test]
async fn a_job_whose_video_is_gone_hands_out_no_link() {
    let api = TestApi::start(Limits::default()).await;
    let id = succeeded_job(&api, false).await;
    let body: Value = reqwest::get(api.url(&format!("/v1/jobs/{id}")))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["outputs"], Value::Null, "{body}");
    assert_eq!(body["outputs_expired"], true);

    let id = succeeded_job(&api, true).await;
    let body: Value = reqwest::get(api.url(&format!("/v1/jobs/{id}")))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert!(body["outputs"]["video_url"].is_string(), "{body}");
    assert_eq!(body["outputs_expired"], false);
}

#[tokio::test]
async fn downloads_follow_rfc_9110_ranges_and_never_serve_a_directory() {
    let api = TestApi::start(Limits::default()).await;
    let id = succeeded_job(&api, true).await;
    let key = minimoto_common::layout::video(id, minimoto_common::spec::Format::Mp4);
    let url = api
        .blobs
        .url(&key, Duration::from_secs(60))
        .await
        .expect("url")
        .url;
    let client = reqwest::Client::new();
    let fetch = |range: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let res = client
                .get(url)
                .header("range", range)
                .send()
                .await
                .expect("get");
            let status = res.status().as_u16();
            let headers = res.headers().clone();
            (status, headers, res.bytes().await.expect("body").to_vec())
        }
    };
    let (status, headers, body) = fetch("bytes=2-4").await;
    assert_eq!((status, body.as_slice()), (206, &b"234"[..]));
    assert_eq!(headers["content-range"], "bytes 2-4/10");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    // An end past the file is clamped.
    let (status, headers, body) = fetch("bytes=7-999").await;
    assert_eq!((status, body.as_slice()), (206, &b"789"[..]));
    assert_eq!(headers["content-range"], "bytes 7-9/10");
    // Several ranges, an unknown unit, a range that does not parse: the whole file.
    for range in ["bytes=0-1,4-5", "items=0-1", "bytes=abc"] {
        let (status, _, body) = fetch(range).await;
        assert_eq!(
            (status, body.as_slice()),
            (200, &b"0123456789"[..]),
            "{range}"
        );
    }
    // A start past the end: 416 with the size, as a problem.
    let (status, headers, body) = fetch("bytes=50-").await;
    assert_eq!(status, 416);
    assert_eq!(headers["content-range"], "bytes */10");
    assert_eq!(headers["content-type"], "application/problem+json");
    let problem: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(problem["code"], "range-not-satisfiable");

    // A directory, even with a valid signature for its name, is not served.
    let dir_key = key.rsplit_once('/').expect("a prefix").0.to_owned();
    let dir_url = api
        .blobs
        .url(&dir_key, Duration::from_secs(60))
        .await
        .expect("url")
        .url;
    let res = client.get(dir_url).send().await.expect("get");
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn a_disk_below_its_reserve_refuses_uploads_before_reading_them_and_is_not_ready() {
    let api = TestApi::start_tuned(Limits::default(), |c| c.min_free_bytes = u64::MAX, |p| p).await;
    let form = one_photo_form("a.jpg");
    let res = post_job(&api, form).await;
    assert_eq!(res.status(), 507);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["code"], "storage-full");
    assert!(leftovers(&api).is_empty(), "{:?}", leftovers(&api));

    let res = reqwest::get(api.url("/readyz")).await.expect("get");
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.expect("json");
    let disk = body["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "disk")
        .expect("a disk check")
        .clone();
    assert_eq!(disk["ok"], false, "{body}");
    assert!(
        disk["error"].as_str().unwrap_or("").contains("bytes free"),
        "{disk}"
    );
}

/// A photo of `w`×`h` noise as PNG: it does not compress, so the file is ~3 bytes a pixel.
fn noise_png(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [a, b, c, _] = state.to_le_bytes();
        image::Rgb([a, b, c])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode");
    out.into_inner()
}

#[tokio::test]
async fn large_photos_sent_fast_are_taken_whole_under_the_buffer_bound() {
    let api = TestApi::start(Limits::default()).await;
    // ~3.2 MB each, over loopback: far more than the parser may hold arrives at once, and the
    // stream must be held back, not cut.
    let mut form = reqwest::multipart::Form::new();
    for i in 0..3 {
        let png = noise_png(1200, 900, i + 1);
        assert!(png.len() > 3_000_000, "{}", png.len());
        form = form.part(
            "images",
            reqwest::multipart::Part::bytes(png).file_name(format!("{i}.png")),
        );
    }
    let res = post_job(&api, form).await;
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["image_count"], 3);
}

/// A job store whose writes fail as a full database does (SQLite's `SQLITE_FULL`).
#[derive(Debug)]
struct FullTable(Arc<dyn JobStore>);

#[async_trait]
impl JobStore for FullTable {
    async fn create(&self, _: &Job) -> Result<()> {
        Err(Error::StorageFull {
            backend: "sqlite",
            message: "database or disk is full".into(),
        })
    }
    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        self.0.get(id).await
    }
    async fn replace(&self, job: &Job) -> Result<Job> {
        self.0.replace(job).await
    }
    async fn delete(&self, id: JobId) -> Result<bool> {
        self.0.delete(id).await
    }
    async fn list(&self, query: &JobQuery) -> Result<Vec<Job>> {
        self.0.list(query).await
    }
    async fn count_active(&self, tenant: &str) -> Result<u64> {
        self.0.count_active(tenant).await
    }
    async fn due_announcements(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<minimoto_common::JobId>> {
        self.0.due_announcements(now, limit).await
    }
    async fn claim_key(&self, t: &str, k: &str, c: &KeyClaim) -> Result<Option<KeyClaim>> {
        self.0.claim_key(t, k, c).await
    }
    async fn replace_key(&self, t: &str, k: &str, o: &KeyClaim, n: &KeyClaim) -> Result<bool> {
        self.0.replace_key(t, k, o, n).await
    }
    async fn release_key(&self, t: &str, k: &str, job: JobId) -> Result<()> {
        self.0.release_key(t, k, job).await
    }
    async fn ready(&self) -> Result<()> {
        self.0.ready().await
    }
}

/// The record cannot be written after the id was queued: 507, and the message is withdrawn with
/// the photos, so no worker ever sees a job that was refused.
#[tokio::test]
async fn a_full_database_is_a_507_and_its_queued_message_is_withdrawn() {
    let api = TestApi::start_with(Limits::default(), |mut p| {
        p.jobs = Arc::new(FullTable(p.jobs.clone()));
        p
    })
    .await;
    let res = post_job(&api, one_photo_form("a.jpg")).await;
    assert_eq!(res.status(), 507);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["code"], "storage-full", "{body}");
    let depth = api.queue.depth().await.expect("depth");
    assert_eq!(
        (depth.visible, depth.in_flight),
        (0, 0),
        "the message was left"
    );
    assert!(
        api.queue
            .receive(Duration::ZERO, Duration::from_secs(1))
            .await
            .expect("receive")
            .is_none()
    );
    assert!(leftovers(&api).is_empty(), "{:?}", leftovers(&api));
}
