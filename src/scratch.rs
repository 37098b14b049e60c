//! Per-process scratch space under `<data>/scratch`, and the sweeping of what dead processes left.
//!
//! Uploads are staged and jobs rendered in temporary directories that are removed when the work
//! ends — unless the process is killed first. Each process therefore works in its own
//! `scratch/<id>/`, holding an exclusive lock on `scratch/<id>/.lock` for its whole life; at start, a
//! process removes every sibling whose lock it can take (its owner is gone). Several processes
//! (`serve`, `worker`) can share one data directory safely.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use anyhow::Context;

#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
    _lock: File,
}

impl Scratch {
    pub fn claim(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        sweep(root);
        let dir = root.join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let lock = File::create(dir.join(".lock"))?;
        lock.try_lock()
            .with_context(|| format!("cannot lock {}", dir.display()))?;
        Ok(Self { dir, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

/// Removes the scratch directories of processes that are gone; logs and goes on on any error.
fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let abandoned = match File::open(path.join(".lock")) {
            // Our try_lock succeeding means no live process holds it.
            Ok(f) => f.try_lock().is_ok(),
            // No lock file: left by an older layout or a crash before locking.
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        if abandoned {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {
                    tracing::info!(dir = %path.display(), "removed scratch space of a process that is gone")
                }
                Err(e) => {
                    tracing::warn!(dir = %path.display(), error = %e, "could not remove abandoned scratch space")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_scratch_is_kept_and_dead_scratch_is_swept() {
        let root = tempfile::tempdir().expect("tempdir");
        let live = Scratch::claim(root.path()).expect("claim");
        std::fs::write(live.path().join("upload"), b"in use").expect("write");
        let dead = root.path().join("dead");
        std::fs::create_dir_all(&dead).expect("mkdir");
        File::create(dead.join(".lock")).expect("unlocked lock file");
        std::fs::write(dead.join("left-over.jpg"), b"x").expect("write");

        let other = Scratch::claim(root.path()).expect("second process");
        assert!(!dead.exists(), "a dead process's scratch is removed");
        assert!(
            live.path().join("upload").exists(),
            "a live process's scratch is kept"
        );
        assert_ne!(other.path(), live.path());
    }
}
