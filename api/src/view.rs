//! The job as clients see it: the stored record minus internals, plus fresh download URLs.

use chrono::{DateTime, Utc};
use minimoto_common::{
    JobId,
    job::{AudioReport, ImageReport, Job, JobError, Stage, Status},
    ports::BlobStore,
    spec::{Format, RenderSpec},
    webhook::Webhook,
};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0193a0f2-5e3c-7b51-9c1e-2f4d8f7a6b10", "status": "succeeded", "stage": null,
    "progress": 1.0, "created_at": "2026-11-23T10:00:00Z", "started_at": "2026-11-23T10:00:01Z",
    "finished_at": "2026-11-23T10:00:09Z", "image_count": 3, "images": [{"file_name": "IMG_2041.jpg",
    "format": "jpeg", "width": 3024, "height": 4032, "orientation": 6, "taken": "2024-05-17T09:30:00",
    "bytes": 2811904}], "options": {"width": 1280, "height": 720,
    "fps": 30, "seconds_per_image": 3.0, "transition": {"kind": "crossfade", "seconds": 0.5},
    "motion": "kenburns", "motion_strength": 1.0, "fit": "blur", "background": "#000000",
    "quality": "standard"}, "error": null,
    "outputs": {"video_url": "http://127.0.0.1:8080/files/outputs/0193a0f2-5e3c-7b51-9c1e-2f4d8f7a6b10/video.mp4?expires=1795000000&signature=…",
    "poster_url": "http://127.0.0.1:8080/files/outputs/0193a0f2-5e3c-7b51-9c1e-2f4d8f7a6b10/poster.jpg?expires=1795000000&signature=…",
    "thumbnails": [{"size": 100, "width": 100, "height": 56,
    "url": "http://127.0.0.1:8080/files/outputs/0193a0f2-5e3c-7b51-9c1e-2f4d8f7a6b10/thumb-100.jpg?expires=1795000000&signature=…"}],
    "preview_url": null, "format": "mp4",
    "urls_expire_at": "2026-11-23T11:00:00Z", "duration_seconds": 9.0, "width": 1280, "height": 720,
    "size_bytes": 1843200}, "outputs_expired": false, "deleted_at": null,
    "expires_at": "2026-12-23T10:00:09Z", "record_expires_at": "2027-01-22T10:00:09Z"}))]
pub struct JobView {
    pub id: JobId,
    pub status: Status,
    /// What a running job is doing now; null otherwise.
    pub stage: Option<Stage>,
    /// 0.0–1.0.
    pub progress: f64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub image_count: u32,
    /// What was found in each photo at submit, in the video's order.
    pub images: Vec<ImageReport>,
    /// What was found in the soundtrack at submit; null when the job has none.
    pub audio: Option<AudioReport>,
    /// The effective render options, defaults filled in.
    pub options: RenderSpec,
    pub error: Option<JobError>,
    /// Present when the job succeeded and its video is still stored.
    pub outputs: Option<OutputsView>,
    /// True when the job succeeded but its video has since been deleted (by `DELETE`, retention
    /// or an operator): there is nothing left to download, so `outputs` is null.
    pub outputs_expired: bool,
    /// When the job was deleted (`DELETE /v1/jobs/{id}`), with its photos and outputs.
    pub deleted_at: Option<DateTime<Utc>>,
    /// When its photos and outputs expire (are deleted, and answer 410 Gone): set when the job
    /// ends, by the server's retention; null while it runs, or when they are kept until deleted.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the job itself expires (then it answers 404); later than `expires_at`.
    pub record_expires_at: Option<DateTime<Utc>>,
    /// With a `callback_url`, once the job has ended: the announcement of its end state and
    /// every attempt to deliver it (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    /// On a server that publishes events (`--publish-events`), once the job has ended: its
    /// message on the events queue and every attempt to publish it (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_event: Option<Webhook>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutputsView {
    /// The video (H.264 MP4 or VP9 WebM, as `format` says), downloadable until `urls_expire_at`
    /// (supports HTTP Range).
    pub video_url: String,
    /// A JPEG frame of the video.
    pub poster_url: String,
    /// JPEG thumbnails of the poster, one per size of the options' `thumbnails`, in their order.
    pub thumbnails: Vec<ThumbnailView>,
    /// The animated preview (GIF or WebP), when the options asked for one.
    pub preview_url: Option<String>,
    /// The video's format.
    pub format: Format,
    pub urls_expire_at: DateTime<Utc>,
    pub duration_seconds: f64,
    pub width: u32,
    pub height: u32,
    pub size_bytes: u64,
}

/// One thumbnail of the poster.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThumbnailView {
    /// The size asked for: the longest side in pixels.
    pub size: u32,
    /// Its actual size (smaller than `size` only when the video is).
    pub width: u32,
    pub height: u32,
    pub url: String,
}

impl JobView {
    /// The job, its outputs checked to be still stored (a link to a video that is gone would
    /// only answer 410: none is handed out).
    pub async fn of(
        job: Job,
        blobs: &dyn BlobStore,
        ttl: std::time::Duration,
    ) -> minimoto_common::Result<Self> {
        Self::make(job, blobs, ttl, true).await
    }

    /// As [`JobView::of`], trusting the record about the outputs (a list of a hundred jobs does
    /// not ask storage about each: a job deleted through the API says so itself).
    pub async fn listed(
        job: Job,
        blobs: &dyn BlobStore,
        ttl: std::time::Duration,
    ) -> minimoto_common::Result<Self> {
        Self::make(job, blobs, ttl, false).await
    }

    async fn make(
        job: Job,
        blobs: &dyn BlobStore,
        ttl: std::time::Duration,
        check_stored: bool,
    ) -> minimoto_common::Result<Self> {
        let mut outputs_expired = false;
        let outputs = match (&job.status, &job.outputs) {
            (Status::Succeeded, Some(_))
                if job.purged_at.is_some() || job.files_expired(chrono::Utc::now()) =>
            {
                outputs_expired = true;
                None
            }
            (Status::Succeeded, Some(o))
                if check_stored && blobs.size(&o.video_key).await?.is_none() =>
            {
                outputs_expired = true;
                None
            }
            (Status::Succeeded, Some(o)) => {
                let video = blobs.url(&o.video_key, ttl).await?;
                let poster = blobs.url(&o.poster_key, ttl).await?;
                let mut thumbnails = Vec::with_capacity(o.thumbnails.len());
                for t in &o.thumbnails {
                    thumbnails.push(ThumbnailView {
                        size: t.size,
                        width: t.width,
                        height: t.height,
                        url: blobs.url(&t.key, ttl).await?.url,
                    });
                }
                let preview_url = match &o.preview_key {
                    Some(key) => Some(blobs.url(key, ttl).await?.url),
                    None => None,
                };
                Some(OutputsView {
                    video_url: video.url,
                    poster_url: poster.url,
                    thumbnails,
                    preview_url,
                    format: job.options.format,
                    urls_expire_at: video.expires_at,
                    duration_seconds: o.duration_seconds,
                    width: o.width,
                    height: o.height,
                    size_bytes: o.size_bytes,
                })
            }
            _ => None,
        };
        Ok(Self {
            id: job.id,
            status: job.status,
            stage: job.stage,
            progress: job.progress,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            image_count: u32::try_from(job.inputs.len()).unwrap_or(u32::MAX),
            images: job.images,
            audio: job.audio.map(|a| a.report),
            options: job.options,
            error: job.error,
            outputs,
            outputs_expired,
            deleted_at: job.purged_at,
            expires_at: job.expires_at,
            record_expires_at: job.record_expires_at,
            webhook: job.webhook,
            queue_event: job.queue_event,
        })
    }
}
