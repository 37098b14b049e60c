//! Spawning the real `minimoto` binary, probing videos; the photo makers are shared with the
//! in-process API tests (`tests/support/photos.rs`) and re-exported here.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

pub use crate::photos::*;

/// The files a job with default options leaves under `outputs/<id>/`: the video, its poster
/// and the poster's three default thumbnails, each once.
pub const DEFAULT_OUTPUTS: [&str; 5] = [
    "poster.jpg",
    "thumb-100.jpg",
    "thumb-300.jpg",
    "thumb-600.jpg",
    "video.mp4",
];

/// A running `minimoto serve`, killed on drop; its log is printed if the test failed.
pub struct App {
    pub base: String,
    child: Option<Child>,
    log: PathBuf,
}

impl App {
    pub fn spawn(data_dir: &Path, extra: &[&str]) -> Self {
        Self::spawn_with_env(data_dir, extra, &[])
    }

    pub fn spawn_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let log = data_dir.with_extension(format!("{}.log", std::process::id()));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_minimoto"))
            .arg("serve")
            // A free loopback port, unless the test listens elsewhere.
            .args(if extra.contains(&"--listen") {
                &[][..]
            } else {
                &["--listen", "127.0.0.1:0"]
            })
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "info,minimoto=debug")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("spawn minimoto serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}; log:\n{}", read(&log)))
            .to_owned();
        Self {
            base,
            child: Some(child),
            log,
        }
    }

    /// A plain TCP connection to the server, for speaking broken HTTP to it.
    pub async fn raw_connection(&self) -> tokio::net::TcpStream {
        let addr = self.base.strip_prefix("http://").expect("http base");
        tokio::net::TcpStream::connect(addr).await.expect("connect")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `kill -9`: no cleanup of any kind.
    pub fn kill_hard(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill -9");
            c.wait().expect("reap");
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let ok = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(ok.success());
        c.wait().expect("wait")
    }

    pub fn log(&self) -> String {
        read(&self.log)
    }

    /// Waits for the process to end by itself (a crash point fired), for at most `timeout`.
    pub async fn exited(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                start.elapsed() < timeout,
                "still running after {timeout:?}; log:\n{}",
                read(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- minimoto serve log ----\n{}", self.log());
        }
    }
}

pub async fn submit(app: &App, form: reqwest::multipart::Form) -> (u16, Value, Option<String>) {
    let res = reqwest::Client::new()
        .post(app.url("/v1/jobs"))
        .multipart(form)
        .send()
        .await
        .expect("POST /v1/jobs");
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().expect("ascii").to_owned());
    (status, res.json().await.expect("json body"), location)
}

pub async fn get_json(url: &str) -> (u16, Value) {
    let res = reqwest::get(url).await.expect("GET");
    let status = res.status().as_u16();
    (status, res.json().await.expect("json body"))
}

/// Polls the job until `done` says so, or panics after `timeout` with the last state.
pub async fn poll_until(
    app: &App,
    id: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let (status, job) = get_json(&app.url(&format!("/v1/jobs/{id}"))).await;
        assert_eq!(status, 200, "{job}");
        if done(&job) {
            return job;
        }
        assert!(
            start.elapsed() < timeout,
            "job did not get there in {timeout:?}: {job}\nlog:\n{}",
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn finished(job: &Value) -> bool {
    matches!(
        job["status"].as_str(),
        Some("succeeded" | "failed" | "cancelled")
    )
}

/// What ffprobe says of a video file, decoding every frame to count them.
pub fn ffprobe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries"])
        .arg("stream=codec_name,pix_fmt,width,height,nb_read_frames,color_space,color_primaries,color_transfer,r_frame_rate:format=duration")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("run ffprobe (is ffmpeg installed?)");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe json")
}

/// Files left in the scratch space of `data` (the per-process lock files aside).
pub fn staged_files(data: &Path) -> Vec<String> {
    files_under(&data.join("scratch"))
        .into_iter()
        .filter(|f| !f.ends_with(".lock"))
        .collect()
}

/// Files under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(
                    p.strip_prefix(root)
                        .expect("under root")
                        .display()
                        .to_string(),
                );
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

pub async fn download(url: &str, to: &Path) -> usize {
    let res = reqwest::get(url).await.expect("download");
    assert_eq!(res.status(), 200, "download {url}");
    let bytes = res.bytes().await.expect("body");
    std::fs::write(to, &bytes).expect("write download");
    bytes.len()
}

/// Waits until the app's encoder (its only child process) is gone, failing after 15 s with the
/// log: a cancelled render must stop within seconds.
pub async fn encoder_stopped(app: &App) -> Duration {
    let since = Instant::now();
    while !children_of(app.pid()).is_empty() {
        assert!(
            since.elapsed() < Duration::from_secs(15),
            "the encoder still runs {:?} after the job was deleted\nlog:\n{}",
            since.elapsed(),
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    since.elapsed()
}

/// The ids of the processes whose parent is `pid` (from `/proc/<id>/stat`).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces, so split after the last `)`.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            children.push(id);
        }
    }
    children.sort_unstable();
    children
}
