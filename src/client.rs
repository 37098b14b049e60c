//! `minimoto submit`, `status` and `delete`: a small client of the HTTP API.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Photos, in the order they appear in the video.
    #[arg(required = true)]
    pub photos: Vec<PathBuf>,
    /// Render options as JSON, e.g. '{"fps": 24, "fit": "cover"}'.
    #[arg(long)]
    pub options: Option<String>,
    /// A soundtrack (MP3, AAC/M4A, WAV, Ogg Vorbis or FLAC), looped or cut to the video.
    #[arg(long)]
    pub audio: Option<PathBuf>,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Wait for the job to finish, showing progress.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: download the video to this file.
    #[arg(long, short, requires = "wait")]
    pub output: Option<PathBuf>,
}

/// One job on a server.
#[derive(Debug, Args)]
pub struct JobArgs {
    pub job_id: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Which server, and the key to call it with.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server.
    #[arg(long, env = "MINIMOTO_URL", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The API key, when the server needs one (`minimoto keys add` makes one).
    #[arg(long, env = "MINIMOTO_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
}

impl ServerArgs {
    /// The server's base URL, without a trailing slash.
    fn base(&self) -> &str {
        self.server.trim_end_matches('/')
    }

    /// A client that sends the key with every request.
    fn http(&self) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(key) = &self.key {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
                .context("the API key has characters a header cannot carry")?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        Ok(reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .default_headers(headers)
            .build()?)
    }
}

/// Turns a problem+json answer into an error that shows its detail.
async fn ok_json(res: reqwest::Response) -> anyhow::Result<Value> {
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let detail = body
            .get("detail")
            .and_then(Value::as_str)
            .unwrap_or("no detail");
        let code = body.get("code").and_then(Value::as_str).unwrap_or("?");
        bail!("the server said {status} ({code}): {detail}");
    }
    Ok(body)
}

pub async fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    let client = args.server.http()?;
    let mut form = reqwest::multipart::Form::new();
    for photo in &args.photos {
        form = form
            .file("images", photo)
            .await
            .with_context(|| format!("cannot read {}", photo.display()))?;
    }
    if let Some(options) = &args.options {
        form = form.text("options", options.clone());
    }
    if let Some(audio) = &args.audio {
        form = form
            .file("audio", audio)
            .await
            .with_context(|| format!("cannot read {}", audio.display()))?;
    }
    let server = args.server.base();
    let res = client
        .post(format!("{server}/v1/jobs"))
        .multipart(form)
        .send()
        .await
        .context("cannot reach the server")?;
    let job = ok_json(res).await?;
    let id = job
        .get("id")
        .and_then(Value::as_str)
        .context("the server's answer has no job id")?
        .to_owned();
    if !args.wait {
        println!("{}", serde_json::to_string_pretty(&job)?);
        return Ok(());
    }
    eprintln!("job {id} queued");
    let job = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let job = ok_json(client.get(format!("{server}/v1/jobs/{id}")).send().await?).await?;
        let status = job.get("status").and_then(Value::as_str).unwrap_or("?");
        let progress = job.get("progress").and_then(Value::as_f64).unwrap_or(0.0);
        let stage = job.get("stage").and_then(Value::as_str).unwrap_or("");
        eprint!("\r{status:>9} {stage:<11} {:>5.1} %", progress * 100.0);
        if matches!(status, "succeeded" | "failed" | "cancelled") {
            eprintln!();
            break job;
        }
    };
    if job.get("status").and_then(Value::as_str) != Some("succeeded") {
        bail!(
            "job {id} did not succeed: {}",
            job.get("error").unwrap_or(&Value::Null)
        );
    }
    if let Some(out) = &args.output {
        let res = client
            .get(format!("{server}/v1/jobs/{id}/video"))
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("downloading the video failed: {}", res.status());
        }
        let bytes = res.bytes().await?;
        std::fs::write(out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!("saved {} ({} bytes)", out.display(), bytes.len());
    }
    println!("{}", serde_json::to_string_pretty(&job)?);
    Ok(())
}

pub async fn status(args: JobArgs) -> anyhow::Result<()> {
    print_job(args, reqwest::Method::GET).await
}

pub async fn delete(args: JobArgs) -> anyhow::Result<()> {
    print_job(args, reqwest::Method::DELETE).await
}

/// Sends `method` to the job's URL and prints the job the server answers with.
async fn print_job(args: JobArgs, method: reqwest::Method) -> anyhow::Result<()> {
    let url = format!("{}/v1/jobs/{}", args.server.base(), args.job_id);
    let job = ok_json(args.server.http()?.request(method, url).send().await?).await?;
    println!("{}", serde_json::to_string_pretty(&job)?);
    Ok(())
}
