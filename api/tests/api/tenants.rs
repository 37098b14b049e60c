//! API keys and tenants, in-process: who may call, whose jobs they see, and the limits of their
//! keys (rate and concurrent jobs).

use std::{sync::Arc, time::Duration};

use minimoto_api::keys::{KeyFile, KeyRing};
use minimoto_common::limits::Limits;
use serde_json::Value;

use crate::{
    photos::{form, jpeg},
    support::{TestApi, no_redirects},
};

struct Keyed {
    api: TestApi,
    file: KeyFile,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// An API whose keys file holds one key per `(tenant, rate, quota)`; the keys, in order.
async fn keyed(keys: &[(&str, u32, u32)]) -> (Keyed, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keys.json");
    let mut file = KeyFile::default();
    let made = keys
        .iter()
        .map(|(tenant, rate, quota)| file.add(tenant, *rate, *quota).expect("add"))
        .collect();
    file.save(&path).expect("save");
    let ring = Arc::new(KeyRing::open(&path).expect("open"));
    let api = TestApi::start_tuned(Limits::default(), |c| c.keys = Some(ring), |p| p).await;
    let keyed = Keyed {
        api,
        file,
        path,
        _dir: dir,
    };
    (keyed, made)
}

async fn call(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let res = request.send().await.expect("request");
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

fn photos() -> reqwest::multipart::Form {
    form(&[("a.jpg", jpeg(64, 48, 1))], None)
}

#[tokio::test]
async fn keys_keep_tenants_apart_and_strangers_out() {
    let (mut k, keys) =
        keyed(&[("acme", 600, 20), ("globex", 600, 20), ("initech", 600, 20)]).await;
    let (acme, globex, initech) = (&keys[0], &keys[1], &keys[2]);
    let api = &k.api;
    let http = no_redirects();

    let (status, headers, body) = call(http.get(api.url("/v1/jobs"))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    assert_eq!(
        headers.get("www-authenticate").map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    let (status, _, body) = call(
        http.get(api.url("/v1/jobs"))
            .bearer_auth("mm_12345678_nope"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    // Health and the document need no key.
    assert_eq!(call(http.get(api.url("/healthz"))).await.0, 200);
    assert_eq!(call(http.get(api.url("/openapi.json"))).await.0, 200);

    let (status, _, job) = call(
        http.post(api.url("/v1/jobs"))
            .bearer_auth(acme)
            .multipart(photos()),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    let url = api.url(&format!("/v1/jobs/{id}"));
    assert_eq!(call(http.get(&url).bearer_auth(acme)).await.0, 200);
    // Another tenant's job does not exist, whatever is asked of it.
    for request in [
        http.get(&url),
        http.delete(&url),
        http.get(format!("{url}/video")),
        http.get(format!("{url}/thumbnails/100")),
    ] {
        let (status, _, body) = call(request.bearer_auth(globex)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("not-found")),
            "{body}"
        );
    }
    let stored = api
        .jobs
        .get(id.parse().expect("id"))
        .await
        .expect("get")
        .expect("job");
    assert_eq!(
        (stored.tenant.as_str(), stored.status.as_str()),
        ("acme", "queued")
    );
    let (_, _, mine) = call(http.get(api.url("/v1/jobs")).bearer_auth(acme)).await;
    assert_eq!(mine["jobs"].as_array().map(Vec::len), Some(1), "{mine}");
    let (_, _, theirs) = call(http.get(api.url("/v1/jobs")).bearer_auth(globex)).await;
    assert_eq!(theirs["jobs"].as_array().map(Vec::len), Some(0), "{theirs}");
    let (_, _, limits) = call(http.get(api.url("/v1/limits")).bearer_auth(globex)).await;
    assert_eq!(
        (&limits["tenant"], &limits["rate_per_minute"]),
        (&Value::from("globex"), &Value::from(600))
    );

    // Revoked while the server runs: refused within a couple of seconds, the others unaffected.
    let initech_id = k.file.keys[2].id.clone();
    assert!(k.file.revoke(&initech_id).expect("revoke"));
    k.file.save(&k.path).expect("save");
    let started = std::time::Instant::now();
    loop {
        let (status, _, body) = call(http.get(api.url("/v1/limits")).bearer_auth(initech)).await;
        if status == 403 {
            assert_eq!(body["code"], "key-revoked", "{body}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still {status} after the revoke"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        call(http.get(api.url("/v1/limits")).bearer_auth(acme))
            .await
            .0,
        200
    );
    k.file = KeyFile::default();
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let (k, keys) = keyed(&[("slow", 3, 20), ("other", 3, 20)]).await;
    let http = no_redirects();
    for _ in 0..3 {
        assert_eq!(
            call(http.get(k.api.url("/v1/limits")).bearer_auth(&keys[0]))
                .await
                .0,
            200
        );
    }
    let (status, headers, body) =
        call(http.get(k.api.url("/v1/limits")).bearer_auth(&keys[0])).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("rate-limited")),
        "{body}"
    );
    let wait: u64 = headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    // Three a minute: the next one in about 20 s.
    assert!((1..=21).contains(&wait), "Retry-After {wait}");
    assert_eq!(
        call(http.get(k.api.url("/v1/limits")).bearer_auth(&keys[1]))
            .await
            .0,
        200,
        "another key has its own rate"
    );
}

#[tokio::test]
async fn a_tenant_at_its_quota_of_active_jobs_gets_429_until_one_ends() {
    let (k, keys) = keyed(&[("busy", 600, 1)]).await;
    let http = no_redirects();
    let submit = || {
        call(
            http.post(k.api.url("/v1/jobs"))
                .bearer_auth(&keys[0])
                .multipart(photos()),
        )
    };
    let (status, _, first) = submit().await;
    assert_eq!(status, 202, "{first}");
    let (status, headers, body) = submit().await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("quota-exceeded")),
        "{body}"
    );
    assert!(headers.contains_key("retry-after"));
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("quota is 1")),
        "{body}"
    );
    let url = k
        .api
        .url(&format!("/v1/jobs/{}", first["id"].as_str().expect("id")));
    assert_eq!(call(http.delete(&url).bearer_auth(&keys[0])).await.0, 200);
    assert_eq!(submit().await.0, 202, "a cancelled job no longer counts");
}

/// A server started with no key (on loopback) is open until the first key is added, then
/// closed, with no restart.
#[tokio::test]
async fn the_first_key_added_closes_an_open_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keys.json");
    let ring = Arc::new(KeyRing::open(&path).expect("no file yet"));
    let api = TestApi::start_tuned(Limits::default(), |c| c.keys = Some(ring), |p| p).await;
    let http = no_redirects();
    assert_eq!(
        call(http.get(api.url("/v1/jobs"))).await.0,
        200,
        "open without keys"
    );
    let mut file = KeyFile::default();
    let key = file.add("acme", 600, 20).expect("add");
    file.save(&path).expect("save");
    let started = std::time::Instant::now();
    while call(http.get(api.url("/v1/jobs"))).await.0 != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still open after the first key"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        call(http.get(api.url("/v1/jobs")).bearer_auth(&key))
            .await
            .0,
        200
    );
}
