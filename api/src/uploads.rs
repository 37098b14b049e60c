//! The uploads in flight: a cap on how many the API receives at once, and the memory they used
//! given back to the system once they are over.
//!
//! A burst of uploads leaves the allocator holding what it freed (glibc keeps it in its arenas:
//! 233 MB at rest after 50 concurrent uploads peaked at 293 MB). When the last upload in flight
//! ends and no other starts for [`QUIET`], the free pages are returned
//! ([`minimoto_runtime::memory::release_free_memory`]), at most once per quiet spell.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long no upload may be in flight before freed memory is returned: long enough that a
/// client sending jobs one after another does not trim between each.
pub const QUIET: Duration = Duration::from_secs(1);

/// The cap, and what tells a quiet spell from a pause between two uploads.
#[derive(Debug)]
pub struct Uploads {
    slots: Arc<Semaphore>,
    total: usize,
    /// Uploads begun so far: a quiet spell is over when this moves.
    begun: AtomicU64,
    quiet: Duration,
    /// Returns the free memory (a counter in tests).
    release: fn() -> bool,
}

/// One upload's slot; when the last one is dropped, a quiet spell may begin.
#[derive(Debug)]
pub struct Upload {
    permit: Option<OwnedSemaphorePermit>,
    uploads: Arc<Uploads>,
}

impl Uploads {
    pub fn new(max: usize) -> Arc<Self> {
        Self::with(max, QUIET, minimoto_runtime::memory::release_free_memory)
    }

    fn with(max: usize, quiet: Duration, release: fn() -> bool) -> Arc<Self> {
        let total = max.max(1);
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(total)),
            total,
            begun: AtomicU64::new(0),
            quiet,
            release,
        })
    }

    /// A slot for one more upload, or `None` when `max` are in flight.
    pub fn try_begin(self: &Arc<Self>) -> Option<Upload> {
        let permit = self.slots.clone().try_acquire_owned().ok()?;
        self.begun.fetch_add(1, Ordering::Relaxed);
        Some(Upload {
            permit: Some(permit),
            uploads: self.clone(),
        })
    }

    pub fn in_flight(&self) -> usize {
        self.total - self.slots.available_permits()
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        drop(self.permit.take());
        let uploads = &self.uploads;
        if uploads.in_flight() > 0 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let begun = uploads.begun.load(Ordering::Relaxed);
        let uploads = uploads.clone();
        runtime.spawn(async move {
            tokio::time::sleep(uploads.quiet).await;
            if uploads.in_flight() > 0 || uploads.begun.load(Ordering::Relaxed) != begun {
                return; // Not quiet: whichever upload ends last will try again.
            }
            let released = tokio::task::spawn_blocking(uploads.release).await;
            tracing::debug!(?released, "uploads are over: freed memory returned");
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    const QUICK: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn the_cap_refuses_one_more_and_frees_a_slot_when_an_upload_ends() {
        let uploads = Uploads::new(2);
        let a = uploads.try_begin().expect("first");
        let _b = uploads.try_begin().expect("second");
        assert!(uploads.try_begin().is_none(), "a third over the cap");
        assert_eq!(uploads.in_flight(), 2);
        drop(a);
        assert_eq!(uploads.in_flight(), 1);
        assert!(uploads.try_begin().is_some());
    }

    static AFTER_BURST: AtomicUsize = AtomicUsize::new(0);

    #[tokio::test]
    async fn memory_is_released_once_after_the_last_upload_of_a_burst() {
        let uploads = Uploads::with(8, QUICK, || {
            AFTER_BURST.fetch_add(1, Ordering::Relaxed);
            true
        });
        let burst: Vec<_> = (0..3).map(|_| uploads.try_begin().expect("slot")).collect();
        let mut burst = burst.into_iter();
        drop(burst.next());
        drop(burst.next());
        tokio::time::sleep(QUICK * 3).await;
        assert_eq!(
            AFTER_BURST.load(Ordering::Relaxed),
            0,
            "one still in flight"
        );
        drop(burst.next());
        tokio::time::sleep(QUICK * 3).await;
        assert_eq!(AFTER_BURST.load(Ordering::Relaxed), 1);
    }

    static POSTPONED: AtomicUsize = AtomicUsize::new(0);

    #[tokio::test]
    async fn an_upload_begun_in_the_quiet_time_postpones_the_release() {
        let uploads = Uploads::with(8, QUICK, || {
            POSTPONED.fetch_add(1, Ordering::Relaxed);
            true
        });
        drop(uploads.try_begin().expect("slot"));
        let next = uploads.try_begin().expect("slot");
        tokio::time::sleep(QUICK * 3).await;
        assert_eq!(POSTPONED.load(Ordering::Relaxed), 0, "not quiet: one began");
        drop(next);
        tokio::time::sleep(QUICK * 3).await;
        assert_eq!(
            POSTPONED.load(Ordering::Relaxed),
            1,
            "released once, after the last"
        );
    }
}
