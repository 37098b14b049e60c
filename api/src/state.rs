//! What the API is built from ([`ApiConfig`], [`Ports`]) and what every handler can reach
//! ([`AppState`]).

use std::{path::PathBuf, sync::Arc, time::Duration};

use axum::Router;

use crate::{auth::Auth, keys::KeyRing};
use minimoto_common::{
    limits::Limits,
    ports::{BlobStore, JobQueue, JobStore},
};

/// The API's settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub limits: Limits,
    /// How long the download URLs handed out stay valid.
    pub url_ttl: Duration,
    /// Where uploads are staged while they are checked (a temp dir per request, removed after).
    pub scratch_dir: PathBuf,
    /// An upload that sends nothing for this long is cut off (408 `upload-stalled`); also the
    /// window over which `upload_min_rate` is measured.
    pub upload_stall: Duration,
    /// Slowest upload accepted, in bytes a second (408 `upload-too-slow`): a drip of bytes must
    /// not hold a connection and a staged file forever.
    pub upload_min_rate: u64,
    /// Uploads received at once, across all clients; one more is a 503 `server-busy`.
    pub max_uploads: usize,
    /// Free bytes the staging disk keeps: below this, uploads get 507 `storage-full` before a byte
    /// is read, and readiness fails.
    pub min_free_bytes: u64,
    /// Photo checks (decodes) in flight, across all requests: the cores they may use …
    pub decode_slots: usize,
    /// … and the memory they may hold together, in bytes.
    pub decode_memory: u64,
    /// Longest a request may take, uploads aside (their pace is watched instead): then a 503
    /// `request-timeout` with `Retry-After`.
    pub request_timeout: Duration,
    /// The API keys; none: every caller is the open tenant (see [`crate::auth`]).
    pub keys: Option<Arc<KeyRing>>,
    /// Where and how webhooks are sent (checked at submit too).
    pub webhooks: crate::webhooks::Settings,
    /// How long a job's files and record outlive it, stamped on each job at submit (none: kept
    /// until deleted).
    pub retention: Option<minimoto_common::retention::Retention>,
    /// Whether each job's end is published on the events queue too, stamped on each job at
    /// submit (see [`crate::webhooks`]).
    pub publish_events: bool,
}

/// The storage the API reaches, through the ports only.
#[derive(Debug, Clone)]
pub struct Ports {
    pub jobs: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub blobs: Arc<dyn BlobStore>,
    /// Routes the backend serves itself, merged in by whoever wires it (the embedded backend's
    /// signed downloads); empty for S3, whose presigned URLs S3 serves.
    pub backend_routes: Router,
}

/// What every handler can reach: the settings, the ports, and the shared decode slots.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: ApiConfig,
    pub jobs: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub blobs: Arc<dyn BlobStore>,
    /// The cores and memory photo checks share (`config.decode_slots`, `config.decode_memory`).
    pub decodes: Arc<crate::decodes::Decodes>,
    /// Uploads being received (`config.max_uploads`).
    pub uploads: Arc<crate::uploads::Uploads>,
    /// The keys and their rate limiters.
    pub auth: Arc<Auth>,
}

impl AppState {
    pub fn new(config: ApiConfig, ports: &Ports) -> Self {
        Self {
            decodes: Arc::new(crate::decodes::Decodes::new(
                config.decode_slots,
                config.decode_memory,
            )),
            uploads: crate::uploads::Uploads::new(config.max_uploads),
            auth: Arc::new(Auth::new(config.keys.clone())),
            config,
            jobs: ports.jobs.clone(),
            queue: ports.queue.clone(),
            blobs: ports.blobs.clone(),
        }
    }
}
