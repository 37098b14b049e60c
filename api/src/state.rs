//! What every handler can reach: the ports, the limits and the URL settings.

use std::{sync::Arc, time::Duration};

use minimoto_common::{
    limits::Limits,
    local::blob::LocalBlobStore,
    ports::{BlobStore, JobQueue, JobStore},
};

#[derive(Debug, Clone)]
pub struct AppState {
    pub jobs: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub blobs: Arc<dyn BlobStore>,
    pub limits: Limits,
    /// How long the download URLs handed out stay valid.
    pub url_ttl: Duration,
    /// Set on the embedded backend: the API itself serves the signed download URLs.
    pub local_files: Option<Arc<LocalBlobStore>>,
    /// Where uploads are staged while they are checked (a temp dir per request, removed after).
    pub scratch_dir: std::path::PathBuf,
    /// Full decodes of uploaded photos in flight, across all requests (one per core is plenty).
    pub decode_slots: Arc<tokio::sync::Semaphore>,
    /// An upload that sends nothing for this long is cut off (408 `upload-stalled`).
    pub upload_stall: Duration,
}
