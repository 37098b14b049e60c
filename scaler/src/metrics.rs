//! The scaler's Prometheus metrics (served by `--metrics-listen`): what it saw, what it aimed
//! for and what it did, so a dashboard shows why the fleet has the size it has.

use metrics::{counter, gauge};
use minimoto_common::fleet::WorkerState;

use crate::policy::{Action, Decision, Observation};

/// Records one round's observation and target.
pub fn observed(o: &Observation, d: &Decision) {
    gauge!("minimoto_scaler_queue_visible").set(o.visible as f64);
    gauge!("minimoto_scaler_queue_in_flight").set(o.in_flight as f64);
    gauge!("minimoto_scaler_target_workers").set(f64::from(d.target));
    gauge!("minimoto_scaler_arrival_rate").set(o.arrival_rate);
    if let Some(s) = o.mean_job_seconds {
        gauge!("minimoto_scaler_mean_job_seconds").set(s);
    }
    for state in WorkerState::ALL {
        let n = o.workers.iter().filter(|w| w.state == state).count();
        gauge!("minimoto_scaler_workers", "state" => state.as_str()).set(n as f64);
    }
}

/// Counts an act carried out.
pub fn acted(action: &Action) {
    match action {
        Action::Launch { count, .. } => {
            counter!("minimoto_scaler_launched_total").increment(u64::from(*count));
        }
        Action::Drain { .. } => counter!("minimoto_scaler_drained_total").increment(1),
        Action::Terminate { .. } => counter!("minimoto_scaler_terminated_total").increment(1),
    }
}

pub fn round_failed() {
    counter!("minimoto_scaler_failed_rounds_total").increment(1);
}

/// Serves the metrics at `http://<listen>/metrics`.
#[cfg(feature = "prometheus")]
pub fn serve(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(listen)
        .install()
        .map_err(|e| anyhow::anyhow!("--metrics-listen {listen}: {e}"))
}
