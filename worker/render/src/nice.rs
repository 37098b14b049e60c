//! Lowering the priority of the decode and compose threads (best effort, Linux only).
//!
//! The encoder is the bottleneck: measured on 2 cores, composing at nice +10 while ffmpeg stays at
//! 0 cut wall time by ~10 %, the largest single effect (see notes/render-pipeline.md). Compose work
//! then only fills the CPU time x264 leaves idle instead of competing with it.
//!
//! Linux keeps a nice value per thread: `setpriority(PRIO_PROCESS, tid)` sets one thread's
//! (rustix's safe wrapper). Any failure just leaves the priority alone.

/// The nice value of background render threads.
const NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority, if the platform allows it.
pub fn lower_current_thread() {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), NICE) {
            tracing::debug!(error = %e, "a render thread keeps its priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This thread's kernel id, from `/proc/thread-self` → `<pid>/task/<tid>`.
    fn current_tid() -> Option<String> {
        let link = std::fs::read_link("/proc/thread-self").ok()?;
        Some(link.file_name()?.to_str()?.to_owned())
    }

    fn nice_of(tid: &str) -> Option<i64> {
        // Field 19 of /proc/<tid>/stat is the nice value (fields after the parenthesised name).
        let stat = std::fs::read_to_string(format!("/proc/thread-self/../{tid}/stat")).ok()?;
        let rest = stat.rsplit_once(')')?.1;
        rest.split_whitespace().nth(16)?.parse().ok()
    }

    #[test]
    fn only_the_calling_thread_is_lowered() {
        if !std::path::Path::new("/proc/thread-self").exists() {
            return; // not Linux
        }
        let main = current_tid().expect("tid");
        let before = nice_of(&main);
        let lowered = std::thread::spawn(|| {
            lower_current_thread();
            let tid = current_tid().expect("tid");
            nice_of(&tid)
        })
        .join()
        .expect("thread");
        // A thread already nicer than 10 (a CI niced as a whole) stays as it is: raising its
        // priority back would need privileges.
        let expected = before.map(|b| b.max(i64::from(NICE)));
        assert_eq!(lowered, expected);
        assert_eq!(nice_of(&main), before, "the caller's priority is untouched");
    }
}
