//! How a worker consumes the queue and renders: every setting is passed in here.

use std::{path::PathBuf, time::Duration};

use minimoto_common::limits::Limits;

use minimoto_render::EncoderSettings;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names this worker in job leases and logs.
    pub id: String,
    /// Longest wait of one long-poll receive.
    pub poll_wait: Duration,
    /// How long a received message stays hidden; also how long a lease lives without a heartbeat.
    pub visibility: Duration,
    /// How often a running job extends its message and its lease (well under `visibility`).
    pub heartbeat_every: Duration,
    /// Claims of one job before it is failed for good.
    pub max_attempts: u32,
    pub limits: Limits,
    /// Per-job scratch directories are made (and removed) here.
    pub scratch_dir: PathBuf,
    /// The longest one attempt may take, by the video's length.
    pub deadline: Deadline,
    pub encoder: EncoderSettings,
}

/// The per-attempt deadline: `base` plus `per_video_second` for each second of video. It exists to
/// free a worker from a render that hangs, so the default is generous (10 min + 10 s per second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub base: Duration,
    pub per_video_second: Duration,
}

impl Default for Deadline {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(600),
            per_video_second: Duration::from_secs(10),
        }
    }
}

impl Deadline {
    /// The deadline of a video `video_seconds` long (capped at a day).
    pub fn for_video(&self, video_seconds: f64) -> Duration {
        let extra = self.per_video_second.as_secs_f64() * video_seconds.max(0.0);
        self.base + Duration::from_secs_f64(extra.min(86_400.0))
    }
}

impl WorkerConfig {
    /// A unique worker id: host, process and a random suffix (several workers share a process).
    pub fn new_id() -> String {
        let host = hostname();
        let rand = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}-{}-{}", std::process::id(), &rand[..8])
    }
}

/// This machine's name, from the kernel (no environment involved), or `local`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_scale_with_the_video() {
        let d = Deadline::default();
        assert_eq!(d.for_video(3.0), Duration::from_secs(630));
        assert_eq!(d.for_video(600.0), Duration::from_secs(600 + 6000));
        assert_eq!(d.for_video(-1.0), Duration::from_secs(600));
        let tight = Deadline {
            base: Duration::from_millis(100),
            per_video_second: Duration::ZERO,
        };
        assert_eq!(tight.for_video(60.0), Duration::from_millis(100));
    }
}
