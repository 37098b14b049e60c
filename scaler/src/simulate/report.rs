//! The table for people: per scenario, one table of waits and one of cost and safety, a row per
//! policy, means over seeds (the p95 wait with its range over seeds).

use std::fmt::Write;

use clap::ValueEnum;

use super::{ScenarioResult, metrics::PRICE_PER_HOUR, metrics::Spread, world::FLAP_WINDOW};
use crate::policy::Knobs;

fn mean(s: Option<Spread>) -> String {
    s.map_or("-".into(), |s| format!("{:.0}", s.mean))
}

fn one(s: Option<Spread>) -> String {
    s.map_or("-".into(), |s| format!("{:.1}", s.mean))
}

pub fn table(results: &[ScenarioResult], knobs: &Knobs, seeds: u64) -> String {
    let mut out = String::new();
    let w = knobs.target_wait;
    for r in results {
        let about = r
            .scenario
            .to_possible_value()
            .and_then(|v| v.get_help().map(ToString::to_string))
            .unwrap_or_default();
        let _ = writeln!(out, "## {}: {about}", r.scenario.as_str());
        let _ = writeln!(
            out,
            "queue wait, seconds (means over {seeds} seeds; p95 range over seeds; p95 per class)"
        );
        let _ = writeln!(
            out,
            "{:<16} {:>6} {:>6} {:>11} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6}",
            "policy",
            "p50",
            "p95",
            "p95 range",
            "p99",
            format!("≤{w:.0}s"),
            "small",
            "medium",
            "large",
            "xlarge"
        );
        for p in &r.policies {
            let m = &p.mean;
            let range = m
                .wait_p95
                .map_or("-".into(), |s| format!("{:.0}–{:.0}", s.min, s.max));
            let within = m
                .within_target
                .map_or("-".into(), |s| format!("{:.0}%", s.mean * 100.0));
            let _ = writeln!(
                out,
                "{:<16} {:>6} {:>6} {:>11} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6}",
                p.policy.as_str(),
                mean(m.wait_p50),
                mean(m.wait_p95),
                range,
                mean(m.wait_p99),
                within,
                mean(m.class_p95[0]),
                mean(m.class_p95[1]),
                mean(m.class_p95[2]),
                mean(m.class_p95[3]),
            );
        }
        let _ = writeln!(
            out,
            "cost and safety (means; recovery: mean, and the worst of all seeds)"
        );
        let _ = writeln!(
            out,
            "{:<16} {:>8} {:>8} {:>7} {:>6} {:>7} {:>9} {:>9} {:>5} {:>5}",
            "policy",
            "inst-s",
            "$/job",
            "actions",
            "flaps",
            "killed",
            "recov",
            "recov max",
            "dlq",
            "lost"
        );
        for p in &r.policies {
            let m = &p.mean;
            let _ = writeln!(
                out,
                "{:<16} {:>8} {:>8} {:>7} {:>6} {:>7} {:>9} {:>9} {:>5} {:>5}",
                p.policy.as_str(),
                mean(m.instance_seconds),
                m.cost_per_job
                    .map_or("-".into(), |s| format!("{:.5}", s.mean)),
                one(m.actions),
                one(m.flaps),
                one(m.busy_killed),
                mean(m.recovery_mean),
                m.recovery_max
                    .map_or("-".into(), |s| format!("{:.0}", s.max)),
                one(m.dead_lettered),
                m.lost,
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "inst-s: instance-seconds billed per second with a 60 s minimum; $/job at ${PRICE_PER_HOUR}/h. \
         flaps: a scale-in within {FLAP_WINDOW:.0} s of a launch, or a launch within {FLAP_WINDOW:.0} s of a scale-in. \
         killed: busy workers terminated. lost: summed over seeds."
    );
    out
}
