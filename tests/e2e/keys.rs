//! API keys through the real binary: `minimoto keys add` makes a key the server then requires;
//! a server others can reach refuses to start without keys unless told `--insecure-no-auth`;
//! keys given whole in `MINIMOTO_KEYS` replace the file.

use std::process::Command;

use crate::helpers::*;

fn minimoto(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_minimoto"))
        .args(args)
        .output()
        .expect("run minimoto")
}

/// `minimoto keys add` with `args`: the key it printed.
fn add_key(args: &[&str]) -> String {
    let out = minimoto(&[&["keys", "add"], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// The server answers 401 without a key and 200 with `key`.
async fn requires(app: &App, key: &str) {
    let http = reqwest::Client::new();
    let without = http.get(app.url("/v1/jobs")).send().await.expect("get");
    assert_eq!(without.status().as_u16(), 401);
    let with = http
        .get(app.url("/v1/jobs"))
        .bearer_auth(key)
        .send()
        .await
        .expect("get");
    assert_eq!(with.status().as_u16(), 200);
}

#[tokio::test]
async fn a_key_made_by_the_cli_is_what_the_server_requires() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let dir = data.to_str().expect("utf-8");
    let key = add_key(&["--tenant", "acme", "--data-dir", dir]);
    assert!(key.starts_with("mm_"), "{key}");
    let stored = std::fs::read_to_string(data.join("keys.json")).expect("keys file");
    assert!(!stored.contains(&key), "the file keeps only the hash");

    let app = App::spawn(&data, &["--workers", "0"]);
    requires(&app, &key).await;
    let http = reqwest::Client::new();

    let list = minimoto(&["keys", "list", "--data-dir", dir]);
    let listing = String::from_utf8(list.stdout).expect("utf-8");
    let id = listing
        .lines()
        .nth(1)
        .and_then(|l| l.split('\t').next())
        .expect("a key's line")
        .to_owned();
    assert!(
        listing.contains("acme") && !listing.contains(&key),
        "{listing}"
    );
    let revoke = minimoto(&["keys", "revoke", &id, "--data-dir", dir]);
    assert!(
        revoke.status.success(),
        "{}",
        String::from_utf8_lossy(&revoke.stderr)
    );
    let started = std::time::Instant::now();
    loop {
        let res = http
            .get(app.url("/v1/jobs"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("get");
        if res.status().as_u16() == 403 {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 5,
            "the revoked key still answers {}",
            res.status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[test]
fn a_reachable_server_without_keys_refuses_to_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let dir = dir.to_str().expect("utf-8");
    let out = minimoto(&[
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--workers",
        "0",
        "--data-dir",
        dir,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without API keys")
            && err.contains("minimoto keys add")
            && err.contains("--insecure-no-auth"),
        "{err}"
    );
}

#[tokio::test]
async fn insecure_no_auth_serves_a_reachable_address_without_keys() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let app = App::spawn(
        &tmp.path().join("data"),
        &[
            "--listen",
            "0.0.0.0:0",
            "--workers",
            "0",
            "--insecure-no-auth",
        ],
    );
    let res = reqwest::get(app.url("/v1/jobs")).await.expect("get");
    assert_eq!(res.status().as_u16(), 200);
    assert!(app.log().contains("--insecure-no-auth"), "the log warns");
}

#[tokio::test]
async fn keys_given_in_the_environment_are_required_and_checked_at_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let made = tmp.path().join("elsewhere.json");
    let made = made.to_str().expect("utf-8");
    let key = add_key(&["--tenant", "acme", "--keys-file", made]);
    let json = std::fs::read_to_string(made).expect("keys file");
    let app = App::spawn_with_env(
        &tmp.path().join("data"),
        &["--listen", "0.0.0.0:0", "--workers", "0"],
        &[("MINIMOTO_KEYS", &json)],
    );
    requires(&app, &key).await;
    let log = app.log();
    assert!(log.contains("from MINIMOTO_KEYS"), "{log}");
    assert!(!log.contains(&json[..40]), "the keys are not logged");

    // Keys in the environment are instead of a keys file, and must be valid.
    let dir = tmp.path().join("other");
    let dir = dir.to_str().expect("utf-8");
    for (value, says) in [
        (r#"{"keys": []}"#, "MINIMOTO_KEYS lists no key"),
        (
            r#"{"keys": [{"id": "key_1"}]}"#,
            "MINIMOTO_KEYS is not valid",
        ),
        ("not json", "MINIMOTO_KEYS is not valid"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_minimoto"))
            .args([
                "serve",
                "--workers",
                "0",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                dir,
            ])
            .env("MINIMOTO_KEYS", value)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says),
            "{value}: {err}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_minimoto"))
        .args([
            "serve",
            "--workers",
            "0",
            "--data-dir",
            dir,
            "--keys-file",
            made,
        ])
        .env("MINIMOTO_KEYS", &json)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--keys-file"),
        "{err}"
    );
    assert!(!err.contains(&json[..40]), "the keys are not echoed: {err}");
}

#[tokio::test]
async fn a_loopback_server_without_keys_serves_and_says_so() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let app = App::spawn(&tmp.path().join("data"), &["--workers", "0"]);
    let res = reqwest::get(app.url("/v1/jobs")).await.expect("get");
    assert_eq!(res.status().as_u16(), 200);
    let log = app.log();
    assert!(
        log.contains("no API keys: serving without authentication, on a loopback address only"),
        "{log}"
    );
}
