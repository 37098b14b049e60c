//! The EC2 Spot interruption notice. EC2 announces a reclaim two minutes ahead at
//! `/latest/meta-data/spot/instance-action` (404 until then); AWS advises polling it every 5 s.
//! On a notice the worker stops receiving and hands its job back at once, so another worker
//! starts it now rather than after the message's visibility timeout.
//!
//! Instance metadata v2 wants a session token (a PUT to `/latest/api/token` on the same host);
//! where that endpoint is missing (v1 only) the notice is read without one.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often the notice is polled.
pub const POLL_EVERY: Duration = Duration::from_secs(5);

/// The instance metadata service behind a notice URL.
#[derive(Debug, Clone)]
pub struct Metadata {
    http: reqwest::Client,
    notice: reqwest::Url,
    token: reqwest::Url,
    instance_id: reqwest::Url,
}

impl Metadata {
    /// `notice_url` is the notice's full URL (on EC2,
    /// `http://169.254.169.254/latest/meta-data/spot/instance-action`).
    pub fn new(notice_url: &str) -> anyhow::Result<Self> {
        let notice = reqwest::Url::parse(notice_url)
            .map_err(|e| anyhow::anyhow!("--spot-notice-url `{notice_url}`: {e}"))?;
        if !matches!(notice.scheme(), "http" | "https") {
            anyhow::bail!("--spot-notice-url `{notice_url}`: only http(s) URLs are polled");
        }
        let at = |path: &str| {
            notice
                .join(path)
                .map_err(|e| anyhow::anyhow!("--spot-notice-url `{notice_url}`: {e}"))
        };
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()?,
            token: at("/latest/api/token")?,
            instance_id: at("/latest/meta-data/instance-id")?,
            notice,
        })
    }

    async fn token(&self) -> Option<String> {
        let response = self
            .http
            .put(self.token.clone())
            .header("X-aws-ec2-metadata-token-ttl-seconds", "300")
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.text().await.ok()
    }

    async fn get(&self, url: &reqwest::Url) -> Result<Option<String>, reqwest::Error> {
        let mut request = self.http.get(url.clone());
        if let Some(token) = self.token().await {
            request = request.header("X-aws-ec2-metadata-token", token);
        }
        let response = request.send().await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(response.error_for_status()?.text().await?))
    }

    /// The instance's id, if the metadata service answers.
    pub async fn instance_id(&self) -> Option<String> {
        self.get(&self.instance_id)
            .await
            .ok()
            .flatten()
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
    }

    /// Polls every `every` until a notice appears (then fires `notice` and returns) or `done`
    /// fires.
    pub async fn watch(&self, every: Duration, notice: CancellationToken, done: CancellationToken) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = done.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.get(&self.notice).await {
                Ok(Some(body)) => {
                    tracing::warn!(notice = %body.trim(), "Spot interruption notice: handing back the job and stopping");
                    notice.cancel();
                    return;
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "the Spot notice could not be read"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A stand-in metadata service (v2: the token is required): no notice for the first two
    /// polls, then one.
    async fn metadata_service() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let polls = Arc::new(AtomicUsize::new(0));
        let seen = polls.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = vec![0; 4096];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let with_token = head
                    .to_ascii_lowercase()
                    .contains("x-aws-ec2-metadata-token: tok");
                let (status, body) = if head.starts_with("PUT /latest/api/token") {
                    ("200 OK", "tok")
                } else if !with_token {
                    ("401 Unauthorized", "")
                } else if head.starts_with("GET /latest/meta-data/instance-id") {
                    ("200 OK", "i-0abc")
                } else if head.starts_with("GET /latest/meta-data/spot/instance-action") {
                    if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                        ("404 Not Found", "")
                    } else {
                        (
                            "200 OK",
                            r#"{"action": "terminate", "time": "2026-12-01T12:00:00Z"}"#,
                        )
                    }
                } else {
                    ("404 Not Found", "")
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            }
        });
        (base, polls)
    }

    #[tokio::test]
    async fn a_notice_fires_after_the_polls_that_found_none() {
        let (base, polls) = metadata_service().await;
        let metadata =
            Metadata::new(&format!("{base}/latest/meta-data/spot/instance-action")).expect("url");
        assert_eq!(metadata.instance_id().await.as_deref(), Some("i-0abc"));
        let (notice, done) = (CancellationToken::new(), CancellationToken::new());
        tokio::time::timeout(
            Duration::from_secs(10),
            metadata.watch(Duration::from_millis(50), notice.clone(), done),
        )
        .await
        .expect("the notice is seen");
        assert!(notice.is_cancelled());
        assert_eq!(
            polls.load(Ordering::SeqCst),
            3,
            "two polls found none, the third a notice"
        );
    }

    #[test]
    fn only_http_urls_are_polled() {
        let err = Metadata::new("file:///etc/passwd").expect_err("file URL");
        assert!(err.to_string().contains("--spot-notice-url"), "{err}");
    }
}
