//! Running the API as a process: its flags ([`ApiArgs`]), binding ([`Listener::bind`]) and serving
//! until shutdown ([`serve`]). Used by the `minimoto-api` binary ([`run`]) and `minimoto serve`.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use clap::Args;
use minimoto_runtime::{CommonArgs, Started};

use crate::{ApiConfig, Ports, keys::KeyRing};

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "MINIMOTO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The URL clients use to reach this server, for download links (default: `http://<listen address>`).
    #[arg(long, env = "MINIMOTO_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// How long download links stay valid, in seconds.
    #[arg(long, env = "MINIMOTO_URL_TTL_SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=7 * 24 * 3600))]
    pub url_ttl_seconds: u64,
    /// Seconds a client may take to send a request's head before the connection is closed.
    #[arg(long, env = "MINIMOTO_HEADER_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub header_timeout_seconds: u64,
    /// Seconds an upload may send nothing before it is cut off (408).
    #[arg(long, env = "MINIMOTO_UPLOAD_STALL_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub upload_stall_seconds: u64,
    /// Slowest upload accepted, in bytes a second, averaged over the stall time (408).
    #[arg(long, env = "MINIMOTO_UPLOAD_MIN_BYTES_PER_SECOND", default_value_t = 16 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub upload_min_bytes_per_second: u64,
    /// Longest a request may take, uploads aside, in seconds (then 503 `request-timeout`).
    #[arg(long, env = "MINIMOTO_REQUEST_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_seconds: u64,
    /// Uploads received at once, across all clients; one more gets 503 with `Retry-After`.
    #[arg(long, env = "MINIMOTO_MAX_UPLOADS", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_uploads: u64,
    /// Memory the checks of uploaded photos may hold together, in MiB (each takes what its header
    /// says it may need, and waits while the rest is in use).
    #[arg(long, env = "MINIMOTO_DECODE_MEMORY_MIB", default_value_t = 192, value_parser = clap::value_parser!(u64).range(16..=1 << 20))]
    pub decode_memory_mib: u64,
    /// Free bytes the disk where uploads are staged keeps; below it uploads get 507 and `/readyz` fails.
    #[arg(long, env = "MINIMOTO_MIN_FREE_BYTES", default_value_t = 1 << 30)]
    pub min_free_bytes: u64,
    /// Files no job owns (photos of a submission cut short by a crash, temporary files of an
    /// interrupted write) are removed once this old.
    #[arg(long, env = "MINIMOTO_ORPHAN_GRACE_SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub orphan_grace_seconds: u64,
    /// Days a job's photos and outputs are kept after it ends (then they are deleted and answer
    /// 410 Gone; the job's record stays 30 days more); fractions allowed (0.25 is six hours);
    /// 0 keeps them until deleted. On AWS give `minimoto setup` the same (it writes the
    /// bucket's lifecycle rule, in whole days rounded up).
    #[arg(long, env = "MINIMOTO_RETENTION_DAYS", default_value = "30")]
    pub retention_days: minimoto_common::retention::RetentionDays,
    /// Seconds between sweeps for files no job owns, and for what retention expired (the
    /// first runs at start).
    #[arg(long, env = "MINIMOTO_SWEEP_INTERVAL_SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_interval_seconds: u64,
    /// The API keys file (`minimoto keys add` writes it; default: `keys.json` in the data
    /// directory). With keys in it every `/v1` request needs one.
    #[arg(long, env = "MINIMOTO_KEYS_FILE")]
    pub keys_file: Option<PathBuf>,
    /// The API keys as the text of a keys file (`MINIMOTO_KEYS="$(cat keys.json)"`), for
    /// deployments that hand secrets to processes as environment variables. Fixed for the
    /// process's life (a revocation takes a restart); instead of the keys file, not beside it.
    #[arg(
        long = "keys-json",
        env = "MINIMOTO_KEYS",
        hide_env_values = true,
        conflicts_with = "keys_file",
        value_name = "JSON"
    )]
    pub keys_json: Option<SecretText>,
    /// Serve without API keys on an address other than loopback: anyone who can reach it can
    /// submit, read and delete every job.
    #[arg(long, env = "MINIMOTO_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    /// Send webhooks to private, loopback and link-local addresses too (receivers inside the
    /// network); otherwise a `callback_url` there is refused at submit and after DNS resolution.
    #[arg(long, env = "MINIMOTO_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
    /// Seconds before the first retry of a webhook; each next wait is 3 times longer (up to 20
    /// minutes).
    #[arg(long, env = "MINIMOTO_WEBHOOK_FIRST_RETRY_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub webhook_first_retry_seconds: u64,
    /// Seconds after a job ends that its webhook is retried for; the last attempt falls then.
    #[arg(long, env = "MINIMOTO_WEBHOOK_GIVE_UP_SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=7 * 86400))]
    pub webhook_give_up_seconds: u64,
    /// Longest a webhook attempt may take (connecting, sending, the receiver's answer).
    #[arg(long, env = "MINIMOTO_WEBHOOK_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=120))]
    pub webhook_timeout_seconds: u64,
    /// Publish every job's end (succeeded, failed, cancelled) on the events queue as well, for
    /// systems that consume a queue instead of webhooks: the embedded one (`minimoto events`
    /// reads it), or on AWS the stack's SQS queue `<stack>-events`.
    #[arg(long, env = "MINIMOTO_PUBLISH_EVENTS")]
    pub publish_events: bool,
}

impl ApiArgs {
    /// How webhooks are sent.
    pub fn webhooks(&self) -> crate::webhooks::Settings {
        crate::webhooks::Settings {
            allow_private: self.webhook_allow_private,
            schedule: minimoto_common::webhook::Schedule {
                first_retry: Duration::from_secs(self.webhook_first_retry_seconds),
                give_up_after: Duration::from_secs(self.webhook_give_up_seconds),
                ..Default::default()
            },
            timeout: Duration::from_secs(self.webhook_timeout_seconds),
            ..Default::default()
        }
    }

    /// The keys file: `--keys-file`, or `keys.json` in the data directory.
    pub fn keys_path(&self, common: &CommonArgs) -> PathBuf {
        self.keys_file
            .clone()
            .unwrap_or_else(|| common.data_dir.join(crate::keys::FILE_NAME))
    }
}

/// Text that holds secrets (the keys file given by value): its `Debug` shows only its length.
#[derive(Clone)]
pub struct SecretText(pub String);

impl std::str::FromStr for SecretText {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretText(<{} chars, redacted>)", self.0.len())
    }
}

/// The keys the API on `addr` checks. A file with no key (yet) leaves the API open, which only a
/// loopback address (or `--insecure-no-auth`) allows; the first key added closes it.
fn key_ring(
    args: &ApiArgs,
    common: &CommonArgs,
    addr: SocketAddr,
) -> anyhow::Result<Option<Arc<KeyRing>>> {
    if let Some(json) = &args.keys_json {
        let origin = Path::new("MINIMOTO_KEYS");
        let file = crate::keys::KeyFile::parse(&json.0, origin)?;
        anyhow::ensure!(
            !file.keys.is_empty(),
            "MINIMOTO_KEYS lists no key: give it the text of a keys file with at least one (`minimoto keys add --keys-file keys.json`), or unset it"
        );
        let ring = KeyRing::fixed(file);
        tracing::info!(
            keys = ring.active(),
            "API keys required (from MINIMOTO_KEYS, fixed until restart)"
        );
        return Ok(Some(Arc::new(ring)));
    }
    let path = args.keys_path(common);
    let ring = KeyRing::open(&path)?;
    if !ring.is_empty() {
        tracing::info!(path = %path.display(), keys = ring.active(), "API keys required");
        return Ok(Some(Arc::new(ring)));
    }
    if addr.ip().is_loopback() {
        tracing::warn!(%addr, path = %path.display(), "no API keys: serving without authentication, on a loopback address only, until `minimoto keys add` makes one");
        Ok(Some(Arc::new(ring)))
    } else if args.insecure_no_auth {
        tracing::warn!(%addr, "no API keys and --insecure-no-auth: anyone who can reach this address can submit, read and delete every job");
        Ok(Some(Arc::new(ring)))
    } else {
        anyhow::bail!(
            "refusing to serve on {addr} without API keys: `{}` has none. Make one with `minimoto keys add --tenant <name>` (same --data-dir or --keys-file), listen on a loopback address, or pass --insecure-no-auth",
            path.display()
        )
    }
}

/// A bound socket, the public base URL that follows from it, and the keys its requests need.
#[derive(Debug)]
pub struct Listener {
    listener: tokio::net::TcpListener,
    pub addr: SocketAddr,
    pub public_url: String,
    pub keys: Option<Arc<KeyRing>>,
}

impl Listener {
    /// Binds first, so that `--listen 127.0.0.1:0` yields the port the download links need; and
    /// refuses to go on without keys on an address others can reach.
    pub async fn bind(args: &ApiArgs, common: &CommonArgs) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let public_url = args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let keys = key_ring(args, common, addr)?;
        Ok(Self {
            listener,
            addr,
            public_url,
            keys,
        })
    }
}

/// Serves the API on `listener` until `started.shutdown` fires, then drains. Fails (and fires
/// `started.shutdown`, so its workers stop too) when the events queue `--publish-events` asks
/// for cannot be opened.
pub async fn serve(
    listener: Listener,
    args: &ApiArgs,
    common: &CommonArgs,
    started: &Started,
) -> anyhow::Result<()> {
    let backend = &started.backend;
    let Listener {
        listener,
        addr,
        public_url,
        keys,
    } = listener;
    let config = ApiConfig {
        limits: common.limits.limits(),
        url_ttl: Duration::from_secs(args.url_ttl_seconds),
        scratch_dir: started.scratch.path().join("uploads"),
        upload_stall: Duration::from_secs(args.upload_stall_seconds),
        upload_min_rate: args.upload_min_bytes_per_second,
        max_uploads: usize::try_from(args.max_uploads).unwrap_or(usize::MAX),
        min_free_bytes: args.min_free_bytes,
        decode_slots: std::thread::available_parallelism().map_or(2, |n| n.get()),
        decode_memory: args.decode_memory_mib << 20,
        request_timeout: Duration::from_secs(args.request_timeout_seconds),
        keys: keys.clone(),
        webhooks: args.webhooks(),
        retention: args.retention_days.retention(),
        publish_events: args.publish_events,
    };
    let ports = Ports {
        jobs: backend.jobs.clone(),
        queue: backend.queue.clone(),
        blobs: backend.blobs.clone(),
        backend_routes: backend.http_routes(),
    };
    let sweeper = tokio::spawn(crate::sweeper::run(
        backend.blobs.clone(),
        backend.jobs.clone(),
        backend.expiry.clone(),
        crate::sweeper::Sweep {
            grace: Duration::from_secs(args.orphan_grace_seconds),
            interval: Duration::from_secs(args.sweep_interval_seconds),
        },
        started.shutdown.clone(),
    ));
    let events = if args.publish_events {
        match backend.events(common).await {
            Ok(events) => Some(events),
            Err(e) => {
                started.shutdown.cancel();
                return Err(e.context("--publish-events: cannot open the events queue"));
            }
        }
    } else {
        None
    };
    let deliverer = match crate::webhooks::Deliverer::new(
        backend.jobs.clone(),
        backend.blobs.clone(),
        keys,
        config.url_ttl,
        config.webhooks,
    ) {
        Ok(d) => Some(tokio::spawn(
            d.with_events(events).run(started.shutdown.clone()),
        )),
        Err(e) => {
            // Never seen (rustls with its own roots has nothing to fail on), but a server that
            // would not send the webhooks it accepts must not run.
            tracing::error!(error = %e, "cannot make the webhook client; stopping");
            started.shutdown.cancel();
            None
        }
    };
    tracing::info!(%addr, %public_url, backend = ?backend.kind, "API serving");
    // Tests and scripts read this line to find the port.
    println!("listening on http://{addr}");
    crate::server::serve(
        listener,
        crate::build(config, ports),
        Duration::from_secs(args.header_timeout_seconds),
        started.shutdown.clone(),
    )
    .await;
    let _ = sweeper.await;
    if let Some(deliverer) = deliverer {
        let _ = deliverer.await;
    }
    Ok(())
}

/// The `minimoto-api` binary: the API alone, no render workers.
pub async fn run(args: ApiArgs, common: CommonArgs) -> anyhow::Result<()> {
    let listener = Listener::bind(&args, &common).await?;
    let started = minimoto_runtime::start(&common, Some(&listener.public_url), || Ok(())).await?;
    serve(listener, &args, &common, &started).await?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_given_by_value_do_not_show_in_debug() {
        let text: SecretText = r#"{"tenants":{"acme":{"webhook_secret":"whsec_abc"}}}"#
            .parse()
            .expect("parse");
        let shown = format!("{:?}", Some(text));
        assert!(!shown.contains("whsec_"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn the_flags_default_to_the_schedule_that_ends_on_the_hour() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            api: ApiArgs,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(["minimoto-api"]).expect("defaults");
        let settings = cli.api.webhooks();
        assert_eq!(
            settings.schedule,
            minimoto_common::webhook::Schedule::default()
        );
        assert_eq!(settings.schedule.give_up_after, Duration::from_secs(3600));
        assert!(
            !settings.allow_private,
            "private destinations are refused by default"
        );
    }
}
