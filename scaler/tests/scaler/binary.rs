//! The `minimoto-scaler` binary refuses bad configuration at startup, naming the setting.

use std::process::Command;

fn scaler(args: &[&str], data: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_minimoto-scaler"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("run minimoto-scaler");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_configuration_is_a_startup_error_that_names_the_setting() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &[
                "run",
                "--fleet",
                "local",
                "--min-workers",
                "5",
                "--max-workers",
                "3",
            ],
            &["--min-workers (5)", "--max-workers (3)"],
        ),
        (
            &["run", "--fleet", "kubernetes"],
            &["--fleet", "kubernetes", "local", "ec2"],
        ),
        (
            &[
                "run",
                "--fleet",
                "local",
                "--worker-program",
                "/nonexistent/minimoto-worker",
            ],
            &["--worker-program", "/nonexistent/minimoto-worker"],
        ),
        (
            &["run", "--fleet", "local", "--target-wait-seconds", "0"],
            &["--target-wait-seconds"],
        ),
    ];
    for (args, named) in cases {
        let (ok, stderr) = scaler(args, &tmp.path().join("data"));
        assert!(!ok, "{args:?} must not start");
        for word in named {
            assert!(
                stderr.contains(word),
                "{args:?}: the error names {word}: {stderr}"
            );
        }
    }
}

#[test]
fn status_reads_the_backend_without_a_running_scaler() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_minimoto-scaler"))
        .args(["status", "--data-dir"])
        .arg(tmp.path().join("data"))
        .output()
        .expect("run minimoto-scaler status");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("0 visible, 0 in flight"), "{stdout}");
    assert!(stdout.contains("last decisions"), "{stdout}");
}
