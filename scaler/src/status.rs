//! `minimoto-scaler status`: the queue, the workers by state and the last decisions, read from
//! the backend (so it works from any machine that can reach the stack, scaler running or not).

use std::fmt::Write;

use chrono::{DateTime, Utc};
use clap::Args;
use minimoto_common::{
    fleet::{DecisionRecord, WorkerRecord, WorkerState},
    ports::Depth,
};
use minimoto_runtime::{Backend, CommonArgs};
use serde_json::json;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

impl StatusArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let backend = Backend::open(&self.common, None).await?;
        let depth = backend.queue.depth().await?;
        let mut workers = backend.registry.list().await?;
        workers.sort_by(|a, b| a.beat.id.cmp(&b.beat.id));
        let decisions = backend.registry.decisions().await?;
        let now = Utc::now();
        if self.json {
            let body = json!({
                "queue": { "visible": depth.visible, "in_flight": depth.in_flight, "dead": depth.dead },
                "workers": workers,
                "decisions": decisions,
            });
            println!("{}", serde_json::to_string_pretty(&body)?);
        } else {
            print!("{}", render(&depth, &workers, &decisions, now));
        }
        Ok(())
    }
}

/// The status as text for people.
pub fn render(
    depth: &Depth,
    workers: &[WorkerRecord],
    decisions: &[DecisionRecord],
    now: DateTime<Utc>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "queue    {} visible, {} in flight, {} dead-lettered",
        depth.visible, depth.in_flight, depth.dead
    );
    let counts: Vec<String> = WorkerState::ALL
        .iter()
        .map(|s| (s, workers.iter().filter(|w| w.beat.state == *s).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let _ = writeln!(
        out,
        "workers  {}{}",
        workers.len(),
        if counts.is_empty() {
            String::new()
        } else {
            format!(" ({})", counts.join(", "))
        }
    );
    if !workers.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<18} {:<9} {:<6} {:>9} {:>5} {:<38} {:<20} HOST",
            "WORKER", "STATE", "DRAIN", "LAST SEEN", "DONE", "JOB", "INSTANCE"
        );
        for w in workers {
            let b = &w.beat;
            let _ = writeln!(
                out,
                "{:<18} {:<9} {:<6} {:>8.0}s {:>5} {:<38} {:<20} {}",
                b.id,
                b.state.as_str(),
                if w.drain_requested { "yes" } else { "" },
                w.silent_for(now),
                b.jobs_done,
                b.job.map(|j| j.to_string()).unwrap_or_default(),
                b.instance.as_deref().unwrap_or(""),
                b.host
            );
        }
    }
    let _ = writeln!(out, "\nlast decisions (newest first)");
    if decisions.is_empty() {
        let _ = writeln!(out, "  none yet");
    }
    for d in decisions {
        let v = &d.decision;
        let mut acts: Vec<String> = Vec::new();
        for a in v["actions"].as_array().into_iter().flatten() {
            let what = match a["act"].as_str() {
                Some("launch") => format!("launch {}", a["count"]),
                Some(act) => format!("{act} {}", a["worker"].as_str().unwrap_or("?")),
                None => continue,
            };
            acts.push(format!("{what} ({})", a["reason"].as_str().unwrap_or("")));
        }
        let _ = writeln!(
            out,
            "  {}  target {}  {}",
            d.at.format("%Y-%m-%d %H:%M:%S"),
            v["target"],
            if acts.is_empty() {
                "no change".to_owned()
            } else {
                acts.join("; ")
            }
        );
        if let Some(why) = v["why"].as_str() {
            let _ = writeln!(out, "      {why}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use minimoto_common::fleet::Beat;

    use super::*;

    #[test]
    fn status_shows_queue_workers_and_decisions() {
        let now = Utc::now();
        let beat = Beat {
            id: "w-abc".into(),
            host: "box".into(),
            instance: Some("i-123".into()),
            version: "0.1.0".into(),
            state: WorkerState::Busy,
            job: None,
            started_at: now,
            idle_since: None,
            jobs_done: 4,
            busy_seconds: 80.0,
            at: now - chrono::Duration::seconds(3),
        };
        let workers = vec![WorkerRecord {
            beat,
            drain_requested: true,
        }];
        let decisions = vec![DecisionRecord {
            at: now,
            decision: json!({
                "target": 3,
                "why": "visible 5",
                "actions": [{"act": "launch", "count": 2, "reason": "target 3 > 1 live workers"}],
            }),
        }];
        let depth = Depth {
            visible: 5,
            in_flight: 1,
            dead: 0,
        };
        let text = render(&depth, &workers, &decisions, now);
        assert!(text.contains("5 visible, 1 in flight"), "{text}");
        assert!(text.contains("workers  1 (1 busy)"), "{text}");
        assert!(
            text.contains("w-abc") && text.contains("i-123") && text.contains("yes"),
            "{text}"
        );
        assert!(
            text.contains("launch 2 (target 3 > 1 live workers)"),
            "{text}"
        );
    }
}
