//! The S3 blob store against moto: the shared contract, multipart uploads (and their abort on
//! failure) and presigned URLs. Creating and deleting the bucket is tested with the admin crate.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    time::{Duration, Instant},
};

use crate::support::{Moto, unique};
use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use minimoto_aws::blob::{PART_SIZE, S3BlobStore};
use minimoto_aws_admin::{Action, BucketOptions, bucket::ensure_bucket};
use minimoto_common::{contract, error::Error, ports::BlobStore};

/// A plain S3 client for looking behind the adapter's back.
fn raw_client(config: &SdkConfig) -> Client {
    Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

/// Bytes in which every 4-byte word differs, so a misplaced or repeated part cannot go unseen.
fn distinct_bytes(len: usize) -> Vec<u8> {
    (0..len.div_ceil(4) as u32)
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .take(len)
        .collect()
}

async fn uploads_in_progress(client: &Client, bucket: &str) -> usize {
    client
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .expect("list multipart uploads")
        .uploads()
        .len()
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A store on a fresh bucket of its own.
async fn store(config: &SdkConfig) -> S3BlobStore {
    let bucket = unique("blobs");
    assert_eq!(
        ensure_bucket(config, &bucket, "minimoto-test", &BucketOptions::default())
            .await
            .expect("create bucket"),
        Action::Created
    );
    S3BlobStore::new(config, bucket)
}

#[tokio::test]
async fn s3_blob_store_keeps_the_contract() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    contract::blob_store(&store(&config).await).await;
}

#[tokio::test]
async fn large_files_go_up_in_parts_and_come_back_byte_for_byte() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let store = store(&config).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = distinct_bytes(PART_SIZE as usize + 123);
    let src = dir.path().join("big.mp4");
    std::fs::write(&src, &data).expect("write source");

    let key = "jobs/big/outputs/video.mp4";
    let size = store
        .put_file(key, &src, "video/mp4")
        .await
        .expect("multipart put");
    assert_eq!(size, data.len() as u64);
    assert_eq!(store.size(key).await.expect("size"), Some(size));

    let client = raw_client(&config);
    let head = client
        .head_object()
        .bucket(store.bucket())
        .key(key)
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_type(), Some("video/mp4"));
    assert!(
        head.e_tag().is_some_and(|t| t.ends_with("-2\"")),
        "stored as a 2-part upload, ETag {:?}",
        head.e_tag()
    );
    assert_eq!(uploads_in_progress(&client, store.bucket()).await, 0);

    let down = dir.path().join("down");
    std::fs::create_dir(&down).expect("mkdir");
    let out = down.join("video.mp4");
    assert_eq!(store.get_to_file(key, &out).await.expect("get"), size);
    assert!(
        std::fs::read(&out).expect("read back") == data,
        "the download differs from the upload"
    );
    assert!(matches!(
        store.get_to_file("jobs/big/nope", &down.join("nope")).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        dir_entries(&down),
        ["video.mp4"],
        "no temporary or partial files are left behind"
    );
}

#[tokio::test]
async fn a_failed_multipart_upload_is_aborted() {
    // Parts below 32 MiB make moto refuse to complete the upload, after all parts are in.
    let moto = Moto::start_with_env(&[("S3_UPLOAD_PART_MIN_SIZE", "33554432")]);
    let config = moto.sdk_config().await;
    let store = store(&config).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("big.bin");
    std::fs::write(&src, distinct_bytes(PART_SIZE as usize + 123)).expect("write source");

    let failed = store
        .put_file("big.bin", &src, "application/octet-stream")
        .await;
    assert!(
        matches!(&failed, Err(Error::Backend { message, .. }) if message.contains("EntityTooSmall")),
        "completing must fail: {failed:?}"
    );
    let client = raw_client(&config);
    assert_eq!(
        uploads_in_progress(&client, store.bucket()).await,
        0,
        "the failed upload must be aborted, leaving no parts"
    );
    assert_eq!(store.size("big.bin").await.expect("size"), None);
}

#[tokio::test]
async fn a_cancelled_multipart_upload_is_aborted() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let store = store(&config).await;
    let client = raw_client(&config);
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("big.bin");
    // Ten parts (sparse, so cheap to make): long enough to be caught half-way.
    std::fs::File::create(&src)
        .and_then(|f| f.set_len(10 * PART_SIZE))
        .expect("make source");

    let put = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .put_file("big.bin", &src, "application/octet-stream")
                .await
        }
    });
    let started = Instant::now();
    while uploads_in_progress(&client, store.bucket()).await == 0 {
        assert!(
            !put.is_finished(),
            "the upload finished before it could be cancelled"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no upload started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    put.abort();
    assert!(put.await.is_err_and(|e| e.is_cancelled()));
    let started = Instant::now();
    while uploads_in_progress(&client, store.bucket()).await != 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a cancelled upload must be aborted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.size("big.bin").await.expect("size"), None);
}

/// A bare HTTP/1.0 GET: the status code and the body.
fn http_get(url: &str, range: Option<&str>) -> std::io::Result<(u16, Vec<u8>)> {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let range = range.map(|r| format!("Range: {r}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n{range}\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    Ok((status, response[split + 4..].to_vec()))
}

#[tokio::test]
async fn presigned_urls_carry_the_ttl_and_serve_the_object() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let store = store(&config).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("poster.jpg");
    std::fs::write(&src, b"0123456789").expect("write");
    let key = "jobs/x/outputs/poster.jpg";
    store.put_file(key, &src, "image/jpeg").await.expect("put");

    let url = store
        .url(key, Duration::from_millis(900_700))
        .await
        .expect("url");
    assert!(
        url.url
            .starts_with(&format!("{}/{}/{key}?", moto.endpoint, store.bucket())),
        "a path-style URL on the endpoint: {}",
        url.url
    );
    let query: Vec<&str> = url
        .url
        .split_once('?')
        .expect("a query")
        .1
        .split('&')
        .collect();
    assert!(
        query.contains(&"X-Amz-Expires=900"),
        "signed for the ttl in whole seconds: {query:?}"
    );
    assert!(query.iter().any(|q| q.starts_with("X-Amz-Signature=")));
    let left = (url.expires_at - chrono::Utc::now()).num_seconds();
    assert!((895..=900).contains(&left), "expires in {left} s");

    let url = url.url.clone();
    let (get, range) = tokio::task::spawn_blocking(move || {
        (
            http_get(&url, None).expect("GET"),
            http_get(&url, Some("bytes=2-4")).expect("ranged GET"),
        )
    })
    .await
    .expect("join");
    assert_eq!(get, (200, b"0123456789".to_vec()));
    assert_eq!(range, (206, b"234".to_vec()), "Range requests are served");

    for bad in [
        Duration::ZERO,
        Duration::from_millis(999),
        Duration::from_secs(7 * 86400 + 1),
    ] {
        assert!(
            matches!(store.url(key, bad).await, Err(Error::Invalid(_))),
            "a ttl of {bad:?} must be refused"
        );
    }
    assert!(store.url(key, Duration::from_secs(7 * 86400)).await.is_ok());
}
