//! The local fleet: worker processes on this machine, against the same backend as the scaler.
//!
//! Each member is a child process (`minimoto-worker`, or `minimoto worker` under `serve
//! --autoscale`) started with `MINIMOTO_WORKER_ID` and the settings in `env`; its output goes to
//! the scaler's. Members are started with `MINIMOTO_EXIT_WITH_PARENT`, so they drain and exit even
//! when the scaler dies without a word (`kill -9`). The fleet knows only the children it started: when the scaler stops,
//! [`LocalFleet::shutdown`] asks them to drain (SIGTERM) and kills what is left after the grace
//! time, so no worker outlives it.

use std::{collections::HashMap, path::PathBuf, process::Stdio, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nix::{sys::signal, unistd::Pid};
use tokio::{process::Child, sync::Mutex};

use super::{Fleet, Member, new_worker_id};
use crate::error::{Error, Result};

/// What a member runs.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Set in the child's environment (over what it inherits).
    pub env: Vec<(String, String)>,
}

#[derive(Debug)]
struct Running {
    child: Child,
    launched_at: DateTime<Utc>,
}

#[derive(Debug)]
pub struct LocalFleet {
    command: WorkerCommand,
    children: Mutex<HashMap<String, Running>>,
}

impl LocalFleet {
    pub fn new(command: WorkerCommand) -> Self {
        Self {
            command,
            children: Mutex::new(HashMap::new()),
        }
    }

    /// SIGTERM to every member (each drains: it finishes its job in hand), then SIGKILL to those
    /// still running after `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        let mut children = self.children.lock().await;
        for c in children.values() {
            if let Some(pid) = c.child.id() {
                let _ = signal::kill(Pid::from_raw(pid as i32), signal::Signal::SIGTERM);
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        for (id, c) in children.iter_mut() {
            match tokio::time::timeout_at(deadline, c.child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(worker = %id, "worker did not stop within the grace time; killing it");
                    let _ = c.child.kill().await;
                }
            }
        }
        children.clear();
    }
}

#[async_trait]
impl Fleet for LocalFleet {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn check(&self) -> Result<()> {
        let program = &self.command.program;
        // A bare name is looked up on PATH when spawned; a path must exist now.
        if program.components().count() > 1 && !program.is_file() {
            return Err(Error::Config(format!(
                "--worker-program {}: no such file",
                program.display()
            )));
        }
        Ok(())
    }

    async fn launch(&self, count: u32) -> Result<Vec<Member>> {
        let mut children = self.children.lock().await;
        let mut launched = Vec::new();
        for _ in 0..count {
            let worker_id = new_worker_id();
            let mut command = tokio::process::Command::new(&self.command.program);
            command
                .args(&self.command.args)
                .envs(self.command.env.iter().map(|(k, v)| (k, v)))
                .env("MINIMOTO_WORKER_ID", &worker_id)
                .env("MINIMOTO_EXIT_WITH_PARENT", "true")
                .stdin(Stdio::null())
                .kill_on_drop(true);
            let child = command.spawn().map_err(|e| {
                Error::fleet(
                    "local",
                    format!("cannot start {}: {e}", self.command.program.display()),
                )
            })?;
            let member = Member {
                worker_id: worker_id.clone(),
                handle: child.id().map_or_else(String::new, |pid| pid.to_string()),
                launched_at: Utc::now(),
            };
            tracing::info!(worker = %worker_id, pid = %member.handle, "worker process started");
            children.insert(
                worker_id,
                Running {
                    child,
                    launched_at: member.launched_at,
                },
            );
            launched.push(member);
        }
        Ok(launched)
    }

    async fn list(&self) -> Result<Vec<Member>> {
        let mut children = self.children.lock().await;
        // Reap the ones that exited (after draining, or a crash).
        children.retain(|id, c| match c.child.try_wait() {
            Ok(Some(status)) => {
                tracing::info!(worker = %id, %status, "worker process exited");
                false
            }
            _ => true,
        });
        Ok(children
            .iter()
            .map(|(id, c)| Member {
                worker_id: id.clone(),
                handle: c.child.id().map_or_else(String::new, |pid| pid.to_string()),
                launched_at: c.launched_at,
            })
            .collect())
    }

    async fn terminate(&self, worker_id: &str) -> Result<()> {
        let removed = self.children.lock().await.remove(worker_id);
        if let Some(mut c) = removed {
            // Only a stopped (drained) or a dead worker is terminated: no grace is owed.
            let _ = c.child.kill().await;
            tracing::info!(worker = %worker_id, "worker process terminated");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_fleet_keeps_the_contract() {
        let fleet = LocalFleet::new(WorkerCommand {
            program: "sleep".into(),
            args: vec!["600".into()],
            env: vec![],
        });
        super::super::contract::fleet(&fleet).await;
    }

    #[tokio::test]
    async fn members_get_their_worker_id_and_the_settings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("seen");
        let fleet = LocalFleet::new(WorkerCommand {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                format!(
                    "echo \"$MINIMOTO_WORKER_ID $MINIMOTO_STACK\" > {}",
                    out.display()
                ),
            ],
            env: vec![("MINIMOTO_STACK".into(), "demo".into())],
        });
        let member = fleet.launch(1).await.expect("launch").remove(0);
        let start = std::time::Instant::now();
        while fleet.list().await.expect("list").len() == 1 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the child never exited"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen = std::fs::read_to_string(&out).expect("the child wrote its environment");
        assert_eq!(seen.trim(), format!("{} demo", member.worker_id));
    }

    #[tokio::test]
    async fn a_missing_program_is_a_setting_error() {
        let fleet = LocalFleet::new(WorkerCommand {
            program: "/nonexistent/minimoto-worker".into(),
            args: vec![],
            env: vec![],
        });
        let err = fleet.check().await.expect_err("missing program");
        assert!(err.to_string().contains("--worker-program"), "{err}");
    }

    #[tokio::test]
    async fn shutdown_stops_every_member() {
        let fleet = LocalFleet::new(WorkerCommand {
            program: "sleep".into(),
            args: vec!["600".into()],
            env: vec![],
        });
        fleet.launch(2).await.expect("launch");
        fleet.shutdown(Duration::from_secs(5)).await;
        assert!(fleet.list().await.expect("list").is_empty());
    }
}
