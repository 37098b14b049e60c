//! `minimoto events`: a consumer of the events queue that `serve --publish-events` publishes each
//! job's end on (the embedded backend's `events` table, or `<stack>-events` on SQS). It prints
//! one event a line, the message's JSON as published, and deletes each once it is written:
//! at least once, so a consumer that dies between the two sees the event again after
//! `--visibility-seconds` (deduplicate on `id`).

use std::{io::Write, time::Duration};

use anyhow::{Context, bail};
use clap::Args;
use minimoto_common::ports::EventQueue;
use minimoto_runtime::{
    Backend, CommonArgs,
    backend::{BackendKind, DATABASE_FILE},
};

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Keep waiting for events until SIGINT/SIGTERM, instead of stopping once the queue is empty.
    #[arg(long)]
    follow: bool,
    /// Stop after this many events.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// Print the events but leave them on the queue: they are received again once
    /// `--visibility-seconds` have passed.
    #[arg(long)]
    keep: bool,
    /// How long a received event is hidden from other consumers while it is printed (SQS allows
    /// up to 12 hours).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=43_200))]
    visibility_seconds: u64,
    #[command(flatten)]
    common: CommonArgs,
}

/// Most events taken in one receive (SQS's own limit).
const BATCH: u64 = 10;
/// How long one receive waits for an event: a long poll while following, and while draining
/// long enough that SQS asks every one of its servers (a short poll samples some of them).
const FOLLOW_WAIT: Duration = Duration::from_secs(20);
const DRAIN_WAIT: Duration = Duration::from_secs(1);

impl EventsArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let db = self.common.data_dir.join(DATABASE_FILE);
        if self.common.backend.backend == BackendKind::Local && !db.exists() {
            // Opening would make an empty database, and the command would quietly print nothing.
            bail!(
                "no minimoto database at {}: give the server's --data-dir (or MINIMOTO_DATA_DIR)",
                db.display()
            );
        }
        let backend = Backend::open(&self.common, None).await?;
        let queue = backend.events(&self.common).await?;
        let shutdown = self
            .follow
            .then(minimoto_runtime::signals::shutdown_on_signals);
        let visibility = Duration::from_secs(self.visibility_seconds);
        let wait = if self.follow { FOLLOW_WAIT } else { DRAIN_WAIT };
        let mut left = self.limit.unwrap_or(u64::MAX);
        while left > 0 {
            let max = usize::try_from(left.min(BATCH)).unwrap_or(1);
            let received = match &shutdown {
                // A receive dropped by the signal may have hidden events already: they come
                // back after the visibility timeout, as after a crash.
                Some(token) => tokio::select! {
                    () = token.cancelled() => return Ok(()),
                    r = queue.receive(max, wait, visibility) => r,
                },
                None => queue.receive(max, wait, visibility).await,
            }
            .context("receiving from the events queue")?;
            if received.is_empty() && !self.follow {
                return Ok(());
            }
            for message in received {
                print_line(&message.body)?;
                if !self.keep {
                    ack(queue.as_ref(), &message.receipt).await?;
                }
                left -= 1;
            }
        }
        Ok(())
    }
}

/// Writes one event and flushes it, so nothing is deleted that a reader downstream did not get
/// (a closed pipe is an error here, and the event stays on the queue).
fn print_line(body: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", body.trim_end())
        .and_then(|()| out.flush())
        .context("writing an event to stdout (it stays on the queue)")
}

async fn ack(queue: &dyn EventQueue, receipt: &str) -> anyhow::Result<()> {
    queue
        .ack(receipt)
        .await
        .context("deleting a printed event from the queue (it will be received again)")
}
