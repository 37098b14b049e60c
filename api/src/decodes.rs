//! What every photo check in flight shares, across all requests: the cores, and one memory
//! budget. A check takes a core and as much of the budget as [`minimoto_photo::inspect_cost`]
//! says it may need, for as long as it runs (to its end, even if the client goes away), so any
//! number of concurrent uploads, hostile ones included, hold at most the budget in decodes.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const MIB: u64 = 1 << 20;

#[derive(Debug)]
pub struct Decodes {
    cores: Arc<Semaphore>,
    /// The budget in MiB.
    memory: Arc<Semaphore>,
    memory_mib: u32,
}

/// The right to run one check: dropped when it ends.
#[derive(Debug)]
pub struct Admission {
    _core: OwnedSemaphorePermit,
    _memory: OwnedSemaphorePermit,
}

impl Decodes {
    pub fn new(cores: usize, memory_bytes: u64) -> Self {
        let memory_mib = u32::try_from(memory_bytes / MIB).unwrap_or(u32::MAX).max(1);
        Self {
            cores: Arc::new(Semaphore::new(cores.max(1))),
            memory: Arc::new(Semaphore::new(memory_mib as usize)),
            memory_mib,
        }
    }

    /// Waits until a core and `cost` bytes of the budget are free. A check costing more than
    /// the whole budget waits for all of it (it then runs alone), rather than never.
    pub async fn admit(&self, cost: u64) -> Admission {
        let mib = u32::try_from(cost.div_ceil(MIB))
            .unwrap_or(u32::MAX)
            .clamp(1, self.memory_mib);
        // Memory first: a core is never held while waiting for memory.
        let memory = self
            .memory
            .clone()
            .acquire_many_owned(mib)
            .await
            .unwrap_or_else(|_| unreachable!("the semaphores are never closed"));
        let core = self
            .cores
            .clone()
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("the semaphores are never closed"));
        Admission {
            _core: core,
            _memory: memory,
        }
    }

    /// MiB of the budget free now (for tests and logs).
    pub fn free_mib(&self) -> usize {
        self.memory.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn checks_wait_for_their_share_of_memory_and_a_core() {
        let decodes = Arc::new(Decodes::new(4, 100 * MIB));
        let big = decodes.admit(70 * MIB).await;
        assert_eq!(decodes.free_mib(), 30);
        // A second 70 MiB check must wait for the first …
        let waiting = tokio::spawn({
            let d = decodes.clone();
            async move { d.admit(70 * MIB).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "over budget: it waits");
        // … and, first come first served, so does a small one behind it: a stream of small
        // checks can never starve a large one.
        let small = tokio::spawn({
            let d = decodes.clone();
            async move { d.admit(10 * MIB).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!small.is_finished(), "queued behind the large one");
        drop(big);
        let second = waiting.await.expect("admitted once the first ended");
        let small = small.await.expect("then the small one");
        assert_eq!(decodes.free_mib(), 20);
        drop((small, second));
        // More than the whole budget waits for all of it instead of never running.
        let huge = decodes.admit(u64::MAX).await;
        assert_eq!(decodes.free_mib(), 0);
        drop(huge);
        assert_eq!(decodes.free_mib(), 100);
    }
}
