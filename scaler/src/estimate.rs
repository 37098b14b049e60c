//! The two rates a policy needs that no queue reports: jobs arriving per second, and seconds per
//! job. Both come from counters the scaler already reads (queue depth, and each worker's finished
//! jobs and busy seconds), over a sliding window, so the binary and the simulator estimate alike.

use std::collections::{HashMap, VecDeque};

/// Cumulative completions across workers that come and go: each worker's counters are followed
/// by id, and only their increases are added (a worker that vanishes takes nothing away).
#[derive(Debug, Default, Clone)]
pub struct Totals {
    last: HashMap<String, (u64, f64)>,
    /// Jobs finished since the scaler started.
    pub done: u64,
    /// Render seconds of those jobs.
    pub busy_seconds: f64,
}

impl Totals {
    /// Takes one reading of every live worker's counters (`id`, jobs done, busy seconds).
    pub fn update<'a>(&mut self, workers: impl IntoIterator<Item = (&'a str, u64, f64)>) {
        let mut seen = HashMap::new();
        for (id, done, busy) in workers {
            let (last_done, last_busy) = self.last.get(id).copied().unwrap_or((0, 0.0));
            if done >= last_done {
                self.done += done - last_done;
                self.busy_seconds += (busy - last_busy).max(0.0);
            } else {
                // Counters went back: the worker restarted under the same id.
                self.done += done;
                self.busy_seconds += busy.max(0.0);
            }
            seen.insert(id.to_owned(), (done, busy));
        }
        self.last = seen;
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: f64,
    backlog: u64,
    done: u64,
    busy_seconds: f64,
}

/// Arrival rate and mean job time over the last `window` seconds.
#[derive(Debug, Clone)]
pub struct Estimator {
    window: f64,
    samples: VecDeque<Sample>,
    mean_job: Option<f64>,
}

/// What the estimator makes of its window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub arrival_rate: f64,
    /// The last window with finished jobs decides; `None` until a job finished.
    pub mean_job_seconds: Option<f64>,
}

impl Estimator {
    pub fn new(window: f64) -> Self {
        Self {
            window,
            samples: VecDeque::new(),
            mean_job: None,
        }
    }

    /// Adds a reading at `at` seconds: messages in the queue (visible + in flight) and the
    /// cumulative totals; returns the estimate over the window.
    pub fn observe(&mut self, at: f64, backlog: u64, totals: &Totals) -> Estimate {
        self.samples.push_back(Sample {
            at,
            backlog,
            done: totals.done,
            busy_seconds: totals.busy_seconds,
        });
        while self.samples.len() > 2 && self.samples[1].at <= at - self.window {
            self.samples.pop_front();
        }
        let (first, last) = (self.samples[0], self.samples[self.samples.len() - 1]);
        let span = last.at - first.at;
        let done = last.done.saturating_sub(first.done);
        if done > 0 {
            self.mean_job = Some((last.busy_seconds - first.busy_seconds).max(0.0) / done as f64);
        }
        // Whatever was finished, or still waits, beyond what waited at the start has arrived.
        let arrived = (last.backlog as f64 - first.backlog as f64 + done as f64).max(0.0);
        Estimate {
            arrival_rate: if span > 0.0 { arrived / span } else { 0.0 },
            mean_job_seconds: self.mean_job,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_follow_workers_that_come_and_go() {
        let mut t = Totals::default();
        t.update([("a", 2, 60.0), ("b", 1, 40.0)]);
        t.update([("a", 3, 90.0)]); // b is gone: nothing is taken away
        t.update([("a", 3, 90.0), ("c", 1, 20.0)]);
        t.update([("a", 1, 10.0)]); // a restarted
        assert_eq!(t.done, 2 + 1 + 1 + 1 + 1);
        assert!((t.busy_seconds - (60.0 + 40.0 + 30.0 + 20.0 + 10.0)).abs() < 1e-9);
    }

    #[test]
    fn rates_come_from_the_window() {
        let mut e = Estimator::new(60.0);
        let mut t = Totals::default();
        assert_eq!(e.observe(0.0, 0, &t).arrival_rate, 0.0);
        // Over 30 s: 6 messages are waiting and 3 jobs of 20 s finished → 9 arrived.
        t.update([("a", 3, 60.0)]);
        let est = e.observe(30.0, 6, &t);
        assert!((est.arrival_rate - 0.3).abs() < 1e-9, "{est:?}");
        assert_eq!(est.mean_job_seconds, Some(20.0));
        // Much later nothing moves: the rate falls to zero, the job time is remembered.
        e.observe(200.0, 6, &t);
        let est = e.observe(300.0, 6, &t);
        assert_eq!(est.arrival_rate, 0.0);
        assert_eq!(est.mean_job_seconds, Some(20.0));
    }
}
