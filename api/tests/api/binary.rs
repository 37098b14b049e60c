//! The `minimoto-api` binary on its own: it serves the API on the embedded backend and stops
//! cleanly on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

#[tokio::test]
async fn the_api_binary_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_minimoto-api"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn minimoto-api");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the listening line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening on …")
        .to_owned();
    let res = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("readyz");
    assert_eq!(res.status(), 200);
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(ok.success());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "a clean exit on SIGTERM");
}

#[test]
fn help_lists_the_apis_own_flags_and_the_shared_ones() {
    let out = Command::new(env!("CARGO_BIN_EXE_minimoto-api"))
        .arg("--help")
        .output()
        .expect("run --help");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for flag in [
        "--listen",
        "--upload-stall-seconds",
        "--backend",
        "--stack",
        "--max-images",
    ] {
        assert!(text.contains(flag), "{flag} in:\n{text}");
    }
    assert!(
        !text.contains("--workers"),
        "the API binary runs no workers:\n{text}"
    );
}
