//! The `minimoto-worker` binary on its own: its flags, and a startup that refuses an unusable ffmpeg.

use std::process::Command;

#[test]
fn help_lists_the_workers_settings() {
    let out = Command::new(env!("CARGO_BIN_EXE_minimoto-worker"))
        .arg("--help")
        .output()
        .expect("run --help");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for flag in [
        "--workers",
        "--receive-wait-seconds",
        "--render-deadline-seconds",
        "--x264-preset",
        "--x264-crf",
        "--ffmpeg",
        "--backend",
    ] {
        assert!(text.contains(flag), "{flag} in:\n{text}");
    }
    assert!(
        !text.contains("--listen"),
        "a worker serves no HTTP:\n{text}"
    );
}

#[test]
fn a_missing_ffmpeg_stops_the_worker_before_it_touches_storage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_minimoto-worker"))
        .args(["--ffmpeg", "/nonexistent/ffmpeg", "--data-dir"])
        .arg(&data)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("/nonexistent/ffmpeg") && text.contains("apt-get install ffmpeg"),
        "{text}"
    );
    assert!(!data.exists(), "nothing was created before the check");
}

#[test]
fn a_preset_x264_does_not_know_is_refused_naming_the_choices() {
    let out = Command::new(env!("CARGO_BIN_EXE_minimoto-worker"))
        .args(["--x264-preset", "warp"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("warp") && text.contains("veryfast"), "{text}");
}
