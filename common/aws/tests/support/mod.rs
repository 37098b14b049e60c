//! A moto server (AWS emulator) per test, reached through the real AWS SDK clients.
//!
//! moto comes from the project's venv (`scripts/ensure-deps` installs it into `.venv`), or from
//! `MINIMOTO_MOTO_SERVER`. If it is missing the test fails and says how to install it.

#![allow(dead_code, reason = "each test binary uses part of the support module")]

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

fn moto_server() -> PathBuf {
    if let Some(p) = std::env::var_os("MINIMOTO_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    // The workspace's venv, from whichever package's tests include this module.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = manifest
        .ancestors()
        .map(|d| d.join(".venv/bin/moto_server"))
        .find(|p| p.exists());
    if let Some(venv) = venv {
        return venv;
    }
    panic!(
        "moto_server (the AWS emulator these tests run against) was not found in a .venv above {} \
         nor in MINIMOTO_MOTO_SERVER. Install it with `scripts/ensure-deps` (or: python3 -m venv .venv && \
         .venv/bin/pip install 'moto[s3,sqs,dynamodb,ec2,autoscaling,cloudwatch]==5.2.5' flask flask-cors)",
        manifest.display()
    );
}

fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

impl Moto {
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// A server with extra environment (moto reads some settings, such as
    /// `S3_UPLOAD_PART_MIN_SIZE`, only from its environment at start).
    pub fn start_with_env(env: &[(&str, &str)]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        Self::start_on(port, env)
    }

    /// Stops the server (an outage): connections to its port are refused until [`Self::restart`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A fresh server on the same port; like every moto start, it holds no resources.
    pub fn restart(&mut self) {
        self.stop();
        let port: u16 = self
            .endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port of the endpoint");
        *self = Self::start_on(port, &[]);
    }

    fn start_on(port: u16, env: &[(&str, &str)]) -> Self {
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while !http_ok(port, "/moto-api/") {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not start within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// SDK configuration pointing at this server, with dummy credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
            .load()
            .await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}
