//! The control loop: observe (queue depth, registry, fleet) → decide (the policy) → act, every
//! interval. Acting follows the drain handshake: a worker chosen for removal is only *asked* to
//! drain; it is terminated once it reports `stopped` (or once it is dead), so a busy worker is
//! never killed.
//!
//! The scaler manages the members of its fleet only. Workers it did not launch (a `minimoto
//! serve` with its own workers, a hand-started `minimoto-worker`) are listed by `status` but
//! neither counted nor touched; their stale records are cleared once they are silent past the
//! heartbeat timeout.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use minimoto_common::{
    fleet::{DecisionRecord, WorkerRecord, WorkerState, seconds_between},
    ports::{JobQueue, WorkerRegistry},
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{
    error::Result,
    estimate::{Estimator, Totals},
    fleet::{Fleet, Member},
    metrics,
    policy::{Action, Decision, Knobs, Observation, Ours, Policy, WorkerView},
};

#[derive(Debug)]
pub struct Controller {
    queue: Arc<dyn JobQueue>,
    registry: Arc<dyn WorkerRegistry>,
    fleet: Arc<dyn Fleet>,
    policy: Ours,
    estimator: Estimator,
    totals: Totals,
    epoch: DateTime<Utc>,
    last_target: Option<u32>,
}

impl Controller {
    pub fn new(
        queue: Arc<dyn JobQueue>,
        registry: Arc<dyn WorkerRegistry>,
        fleet: Arc<dyn Fleet>,
        knobs: Knobs,
    ) -> Result<Self> {
        knobs.validate()?;
        Ok(Self {
            queue,
            registry,
            fleet,
            estimator: Estimator::new(knobs.rate_window),
            policy: Ours::new(knobs),
            totals: Totals::default(),
            epoch: Utc::now(),
            last_target: None,
        })
    }

    /// Runs a decision every `interval` until `shutdown` fires. A failed round is logged and the
    /// next one tries again: the loop itself never gives up.
    pub async fn run(mut self, interval: Duration, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            if let Err(e) = self.tick().await {
                metrics::round_failed();
                tracing::warn!(error = %e, "scaling round failed; trying again next round");
            }
        }
    }

    /// One round: observe, decide, act. Returns the decision (as acted on).
    pub async fn tick(&mut self) -> Result<Decision> {
        let depth = self.queue.depth().await?;
        let records = self.registry.list().await?;
        let members = self.fleet.list().await?;
        let now = Utc::now();
        self.forget_strays(&records, &members, now).await;

        let by_id: HashMap<&str, &WorkerRecord> =
            records.iter().map(|r| (r.beat.id.as_str(), r)).collect();
        let workers: Vec<WorkerView> = members
            .iter()
            .map(|m| view(m, by_id.get(m.worker_id.as_str()).copied(), now))
            .collect();
        self.totals.update(
            records
                .iter()
                .map(|r| (r.beat.id.as_str(), r.beat.jobs_done, r.beat.busy_seconds)),
        );
        let at = seconds_between(self.epoch, now);
        let estimate = self
            .estimator
            .observe(at, depth.visible + depth.in_flight, &self.totals);
        let observation = Observation {
            now: at,
            visible: depth.visible,
            in_flight: depth.in_flight,
            workers,
            mean_job_seconds: estimate.mean_job_seconds,
            arrival_rate: estimate.arrival_rate,
        };
        let decision = self.policy.decide(&observation);
        self.act(&decision).await;
        metrics::observed(&observation, &decision);
        if !decision.actions.is_empty() || self.last_target != Some(decision.target) {
            tracing::info!(target_workers = decision.target, actions = ?decision.actions, why = %decision.why, "scaling decision");
            let record = DecisionRecord {
                at: now,
                decision: json!({
                    "target": decision.target,
                    "actions": decision.actions,
                    "why": decision.why,
                    "visible": depth.visible,
                    "in_flight": depth.in_flight,
                    "workers": observation.workers.len(),
                }),
            };
            if let Err(e) = self.registry.record_decision(&record).await {
                tracing::warn!(error = %e, "could not keep the decision for `status`");
            }
        } else {
            tracing::debug!(target_workers = decision.target, why = %decision.why, "no change");
        }
        self.last_target = Some(decision.target);
        Ok(decision)
    }

    /// Carries out each act; one that fails is logged and decided again next round.
    async fn act(&self, decision: &Decision) {
        for action in &decision.actions {
            let done = match action {
                Action::Terminate { worker, .. } => match self.fleet.terminate(worker).await {
                    Ok(()) => self.registry.remove(worker).await.map_err(Into::into),
                    Err(e) => Err(e),
                },
                Action::Drain { worker, .. } => self
                    .registry
                    .request_drain(worker)
                    .await
                    .map(|_| ())
                    .map_err(Into::into),
                Action::Launch { count, .. } => self.fleet.launch(*count).await.map(|_| ()),
            };
            match done {
                Ok(()) => metrics::acted(action),
                Err(e) => tracing::warn!(?action, error = %e, "could not act"),
            }
        }
    }

    /// Clears records of workers that are not members of the fleet and are stopped or silent past
    /// the heartbeat timeout (a member that ended on its own, a static worker that died).
    async fn forget_strays(
        &self,
        records: &[WorkerRecord],
        members: &[Member],
        now: DateTime<Utc>,
    ) {
        let timeout = self.policy.knobs.heartbeat_timeout;
        for r in records {
            let member = members.iter().any(|m| m.worker_id == r.beat.id);
            let gone = r.beat.state == WorkerState::Stopped || r.silent_for(now) > timeout;
            if !member && gone {
                match self.registry.remove(&r.beat.id).await {
                    Ok(()) => {
                        tracing::info!(worker = %r.beat.id, state = %r.beat.state, "forgot a worker that is gone")
                    }
                    Err(e) => {
                        tracing::warn!(worker = %r.beat.id, error = %e, "could not forget a gone worker")
                    }
                }
            }
        }
    }
}

/// A member as the policy sees it: its last beat, or `booting` since launch if it has none yet.
fn view(member: &Member, record: Option<&WorkerRecord>, now: DateTime<Utc>) -> WorkerView {
    match record {
        Some(r) => WorkerView {
            id: member.worker_id.clone(),
            state: r.beat.state,
            registered: true,
            silent_for: r.silent_for(now),
            idle_for: match (r.beat.state, r.beat.idle_since) {
                (WorkerState::Idle, Some(since)) => seconds_between(since, now),
                _ => 0.0,
            },
            drain_requested: r.drain_requested,
            cpu: if r.beat.state == WorkerState::Busy {
                1.0
            } else {
                0.0
            },
        },
        None => WorkerView {
            id: member.worker_id.clone(),
            state: WorkerState::Booting,
            registered: false,
            silent_for: seconds_between(member.launched_at, now),
            idle_for: 0.0,
            drain_requested: false,
            cpu: 0.0,
        },
    }
}
