//! Per-process scratch space under `<data>/scratch`, and the sweeping of what dead processes left.
//!
//! Uploads are staged and jobs rendered in temporary directories that are removed when the work
//! ends — unless the process is killed first. Each process therefore works in its own
//! `scratch/<id>/` and holds an exclusive lock on `scratch/<id>.lock` for its whole life. At start,
//! a process removes every `<id>/` whose lock it can take (its owner is gone) or that has no lock
//! file at all. The lock file is locked under a temporary name and only then renamed into place,
//! so no sweeper ever sees a live process's lock file unlocked. Several processes (`serve`,
//! `worker`) can share one data directory.

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
        let id = uuid::Uuid::new_v4().simple().to_string();
        let pending = root.join(format!(".{id}.lock-pending"));
        let lock = File::create(&pending)
            .with_context(|| format!("cannot create {}", pending.display()))?;
        lock.try_lock()
            .with_context(|| format!("cannot lock {}", pending.display()))?;
        std::fs::rename(&pending, root.join(format!("{id}.lock")))?;
        let dir = root.join(&id);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        sweep(root);
        Ok(Self { dir, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

/// Bytes an unprivileged process can still write on the file system holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(path)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Removes the scratch directories of processes that are gone; logs and goes on on any error.
fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if let Some(id) = name.strip_suffix(".lock") {
            // Taking the lock proves its owner is gone; hold it while removing.
            let Ok(lock) = File::open(&path) else {
                continue;
            };
            if lock.try_lock().is_ok() {
                remove(&root.join(id));
                let _ = std::fs::remove_file(&path);
            }
        } else if path.is_dir() && !root.join(format!("{name}.lock")).exists() {
            // A directory is made after its lock file, so one without a lock file is not live.
            remove(&path);
        }
    }
}

fn remove(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {
            tracing::info!(dir = %dir.display(), "removed scratch space of a process that is gone")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "could not remove abandoned scratch space")
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
        // A process that died: its lock file is there but nobody holds it.
        let dead = root.path().join("dead");
        std::fs::create_dir_all(&dead).expect("mkdir");
        File::create(root.path().join("dead.lock")).expect("unlocked lock file");
        std::fs::write(dead.join("left-over.jpg"), b"x").expect("write");
        // A directory with no lock file at all.
        let orphan = root.path().join("orphan");
        std::fs::create_dir_all(&orphan).expect("mkdir");

        let other = Scratch::claim(root.path()).expect("second process");
        assert!(
            !dead.exists() && !root.path().join("dead.lock").exists(),
            "a dead process's scratch is removed"
        );
        assert!(
            !orphan.exists(),
            "a directory without a lock file is removed"
        );
        assert!(
            live.path().join("upload").exists(),
            "a live process's scratch is kept"
        );
        assert_ne!(other.path(), live.path());
        drop(live);
        let _third = Scratch::claim(root.path()).expect("third process");
        assert!(other.path().exists(), "still live");
    }
}
