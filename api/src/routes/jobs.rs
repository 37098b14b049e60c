//! `/v1/jobs`: submit a job, read it, fetch its video and other outputs.

use std::sync::Arc;

use axum::{
    Extension, Json,
    body::Body,
    extract::{FromRequest, Multipart, Path, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use chrono::Utc;
use minimoto_common::ErrorCode;
use minimoto_common::{
    JobId, crash,
    job::{Job, Outputs, Soundtrack, Status},
    layout,
    ports::{Update, update_job},
    spec::RenderSpec,
};
use tracing::Instrument;
use utoipa::ToSchema;

use crate::{
    auth::Caller,
    error::{ApiError, ApiResult, Problem},
    idempotency::{self, Begin},
    ingest::{self, StagedImage, Upload},
    pace::{self, Pace, Paced, Watch},
    state::AppState,
    view::JobView,
    webhooks,
};

/// The multipart form of `POST /v1/jobs`.
// `Deserialize` only so that `deny_unknown_fields` states in the document that a part of another
// name is refused.
#[derive(Debug, ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "documents the multipart form for OpenAPI; parts are read by `ingest`"
)]
pub struct CreateJobForm {
    /// One or more photos (JPEG, PNG, WebP, GIF, BMP, TIFF or HEIC, detected by content), in order.
    #[schema(value_type = Vec<String>, format = Binary, min_items = 1)]
    images: Vec<Vec<u8>>,
    /// Render options as JSON; every field is optional.
    #[schema(value_type = minimoto_common::spec::RenderSpec, required = false)]
    options: Option<String>,
    /// A soundtrack (MP3, AAC/M4A, WAV, Ogg Vorbis or FLAC, detected by content; at most one):
    /// cut or looped to the video's length and faded out over `audio_fade_seconds`.
    #[schema(value_type = String, format = Binary, required = false)]
    audio: Option<Vec<u8>>,
}

pub fn job_path(id: JobId) -> String {
    format!("/v1/jobs/{id}")
}

fn parse_id(raw: &str) -> ApiResult<JobId> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("job {raw}")))
}

/// Submit photos to be made into a video.
#[utoipa::path(
    post, path = "/v1/jobs", tag = "jobs",
    request_body(content = CreateJobForm, content_type = "multipart/form-data"),
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Any 1–255 visible ASCII characters (a UUID): a retry with the same key and the same photos and options answers with the job the first try made (with `Idempotent-Replayed: true`), even when the first answer was lost; the same key with another request is a 422 `idempotency-key-reused`. Keys are per tenant.")),
    responses(
        (status = 202, description = "Accepted: the job is queued (or, for a retry with its Idempotency-Key, the job it made)", body = JobView,
            headers(("Location" = String, description = "The job's URL"),
                ("Idempotent-Replayed" = String, description = "`true` when the answer is the job an earlier request with the same Idempotency-Key made"))),
        (status = 400, description = "Malformed request: no images, an unknown part, a malformed Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with the same Idempotency-Key is still being submitted (`idempotency-in-progress`); `Retry-After` says when to try again", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The upload stopped sending for the stall timeout (60 s by default), or sent slower than the floor rate", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too many images, an image, the audio or the upload too large, or a part's headers over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not multipart, or a part is not a supported image or audio file", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid options, a corrupt image or soundtrack, or an Idempotency-Key used before for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A backend is down, or the server is receiving as many uploads as it takes at once; `Retry-After` says when to try again", body = Problem, content_type = "application/problem+json"),
        (status = 507, description = "The server's storage is full; nothing was kept; `Retry-After` says when to try again", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_job(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> ApiResult<Response> {
    // Refused before a byte of the body is read: a malformed key, the tenant's quota, and the
    // cap on uploads in flight, which bounds the memory and the scratch files all of them hold.
    // (A keyed retry of a job already made is answered whatever the quota: its quota is checked
    // once the key is known to be new.)
    let key = idempotency::key_of(request.headers())?;
    if key.is_none() {
        check_quota(&state, &caller).await?;
    }
    let _slot = state.uploads.try_begin().ok_or_else(|| {
        ApiError::new(
            ErrorCode::ServerBusy,
            format!(
                "the server is receiving {} uploads, as many as it takes at once; try again shortly",
                state.config.max_uploads
            ),
        )
    })?;
    ingest::staging_room(&state.config).await?;
    let watch = Arc::new(Watch::default());
    let pace = Pace {
        stall: state.config.upload_stall,
        min_rate: state.config.upload_min_rate,
        max_unparsed: ingest::MAX_UNPARSED_BYTES,
        hold: pace::HOLD,
    };
    let (parts, body) = request.into_parts();
    let says_multipart = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    let body = Body::from_stream(Paced::new(body.into_data_stream(), pace, watch.clone()));
    let multipart = Multipart::from_request(Request::from_parts(parts, body), &state)
        .await
        .map_err(|e| {
            if says_multipart {
                // The right media type with a broken parameter: the framing is wrong, not the format.
                ApiError::new(
                    ErrorCode::BadMultipart,
                    "the multipart/form-data content type needs a valid `boundary` parameter",
                )
            } else {
                ApiError::new(
                    ErrorCode::NotMultipart,
                    format!("send the job as multipart/form-data ({})", e.body_text()),
                )
            }
        })?;
    let callback = |spec: &RenderSpec| {
        webhooks::check_callback(
            spec,
            &caller.tenant,
            state.config.keys.as_deref(),
            &state.config.webhooks,
        )
    };
    let upload = ingest::receive(
        multipart,
        &watch,
        &state.config.limits,
        &state.config.scratch_dir,
        &state.decodes,
        &callback,
    )
    .await?;
    let received = upload.images.iter().map(|i| i.bytes).sum::<u64>()
        + upload.audio.as_ref().map_or(0, |a| a.bytes);
    metrics::counter!("minimoto_ingest_bytes_total").increment(received);
    let id = match &key {
        None => JobId::new(),
        Some(key) => {
            let fingerprint = idempotency::fingerprint(&upload).await?;
            match idempotency::begin(&state, &caller.tenant, key, fingerprint).await? {
                Begin::Replay(job) => {
                    tracing::info!(job_id = %job.id, "a retry of a submission: answering with its job");
                    return accepted(&state, *job, true).await;
                }
                Begin::New(id) => {
                    if let Err(e) = check_quota(&state, &caller).await {
                        release(&state, &caller.tenant, key, id).await;
                        return Err(e);
                    }
                    id
                }
            }
        }
    };
    // Storing, queueing and writing run in their own task: a client that disconnects midway must
    // not cut the submission short between steps and leave photos without a job.
    let job = tokio::spawn({
        let state = state.clone();
        // In the request's span, so its log lines carry the request id.
        async move {
            let result = submit(&state, &caller.tenant, upload, id).await;
            if let (Err(_), Some(key)) = (&result, &key) {
                release(&state, &caller.tenant, key, id).await;
            }
            result
        }
        .instrument(tracing::Span::current())
    })
    .await
    .map_err(ApiError::internal)??;
    accepted(&state, job, false).await
}

/// `202 Accepted` with the job and its `Location`; `Idempotent-Replayed: true` when a retry is
/// answered with the job its first try made.
async fn accepted(state: &AppState, job: Job, replayed: bool) -> ApiResult<Response> {
    let location = job_path(job.id);
    let view = JobView::of(job, state.blobs.as_ref(), state.config.url_ttl).await?;
    let mut res = (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response();
    if replayed {
        res.headers_mut().insert(
            "idempotent-replayed",
            header::HeaderValue::from_static("true"),
        );
    }
    Ok(res)
}

/// Lets the key of a submission that failed go, so that a retry can make the job.
async fn release(state: &AppState, tenant: &str, key: &str, id: JobId) {
    if let Err(e) = state.jobs.release_key(tenant, key, id).await {
        // The claim goes stale and a retry takes it over after `STALE_CLAIM`.
        tracing::warn!(job_id = %id, error = %e, "could not release the Idempotency-Key of a failed submission");
    }
}

/// Stores the photos, queues the id, writes the job. On any failure, removes the photos and
/// withdraws a message already sent, so a rejected submission leaves nothing behind (a message the
/// queue cannot withdraw is dropped by the workers).
async fn submit(state: &AppState, tenant: &str, upload: Upload, id: JobId) -> ApiResult<Job> {
    let prefix = layout::inputs_of(id);
    // A crash at any line here leaves photos no job owns (the sweeper reclaims them after the
    // orphan grace) or a message without a record (workers drop it; see their claim).
    let mut queued = false;
    let result = async {
        crash::point("submit-staged");
        let mut keys = Vec::with_capacity(upload.images.len());
        for (i, image) in upload.images.iter().enumerate() {
            let key = layout::input(id, i, image.info.format);
            state
                .blobs
                .put_file(&key, &image.path, &format!("image/{}", image.info.format))
                .await?;
            keys.push(key);
            crash::point("submit-photo-stored");
        }
        let audio = match &upload.audio {
            Some(a) => {
                let key = layout::audio(id, a.info.format);
                let content_type = a.info.content_type();
                state.blobs.put_file(&key, &a.path, content_type).await?;
                Some(Soundtrack {
                    key,
                    report: a.report(),
                })
            }
            None => None,
        };
        // The message goes out before the record exists: if this process dies in between, workers
        // drop the message after a few tries (see the worker's claim), whereas a record written
        // first and never queued would sit in `queued` forever.
        state.queue.send(id).await?;
        queued = true;
        crash::point("submit-queued");
        let images = upload.images.iter().map(StagedImage::report).collect();
        let job = Job {
            tenant: tenant.to_owned(),
            images,
            audio,
            retention: state.config.retention,
            publish_event: state.config.publish_events,
            ..Job::new(id, upload.options.clone(), keys, Utc::now())
        };
        state.jobs.create(&job).await?;
        crash::point("submit-created");
        Ok::<_, minimoto_common::Error>(job)
    }
    .await;
    if result.is_err() {
        if let Err(e) = state.blobs.delete_prefix(&prefix).await {
            tracing::warn!(job_id = %id, error = %e, "could not remove the blobs of a failed submission");
        }
        if queued {
            match state.queue.withdraw(id).await {
                Ok(true) => {
                    tracing::info!(job_id = %id, "withdrew the message of a failed submission")
                }
                Ok(false) => {
                    tracing::info!(job_id = %id, "the queue keeps the message of a failed submission; workers will drop it")
                }
                Err(e) => {
                    tracing::warn!(job_id = %id, error = %e, "could not withdraw the message of a failed submission; workers will drop it")
                }
            }
        }
    }
    let job = result?;
    tracing::info!(job_id = %id, images = job.inputs.len(), "job queued");
    metrics::counter!("minimoto_jobs_submitted_total").increment(1);
    Ok(job)
}

/// How long a client over its quota should wait before trying again: about a short render.
const QUOTA_RETRY_SECONDS: u64 = 10;

/// 429 when the caller's tenant already has as many jobs queued or running as its key allows.
/// Counted before the upload is read, so it may let a few more through when several arrive at
/// once; it bounds a tenant's share of the queue, not an exact count.
async fn check_quota(state: &AppState, caller: &Caller) -> ApiResult<()> {
    let Some(max) = caller.max_active_jobs else {
        return Ok(());
    };
    let active = state.jobs.count_active(&caller.tenant).await?;
    if active >= u64::from(max) {
        return Err(ApiError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "tenant {} has {active} jobs queued or running, its quota is {max}; try again when one has ended",
                caller.tenant
            ),
        )
        .retry_after(QUOTA_RETRY_SECONDS));
    }
    Ok(())
}

/// The caller's job `raw`: 404 when there is none, or it is another tenant's (whose jobs are
/// not even said to exist).
pub(crate) async fn load_job(state: &AppState, caller: &Caller, raw: &str) -> ApiResult<Job> {
    let id = parse_id(raw)?;
    match state.jobs.get(id).await? {
        // A record past its expiry is gone, whether or not storage has deleted it yet.
        Some(job) if job.tenant == caller.tenant && !job.record_expired(Utc::now()) => Ok(job),
        _ => Err(ApiError::not_found(format!("job {id}"))),
    }
}

/// Read a job: its status, progress and, once it succeeded, where to download the video.
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = JobId, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_job(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    let job = load_job(&state, &caller, &id).await?;
    Ok(Json(
        JobView::of(job, state.blobs.as_ref(), state.config.url_ttl).await?,
    ))
}

/// Delete a job: a queued or running job is cancelled (a running render stops within seconds and
/// its worker moves on), and the job's photos and outputs are deleted. The record stays: the job
/// still answers, its outputs with 410 Gone. Deleting again changes nothing and answers the same.
#[utoipa::path(
    delete, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = JobId, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job as it is now: `cancelled` if it had not ended, otherwise its final status with `outputs_expired`", body = JobView),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_job(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    let id = load_job(&state, &caller, &id).await?.id;
    // Its own task, so a client that hangs up cannot leave the record deleted and the files kept.
    let job = tokio::spawn({
        let state = state.clone();
        async move { discard(&state, id).await }.instrument(tracing::Span::current())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(
        JobView::of(job, state.blobs.as_ref(), state.config.url_ttl).await?,
    ))
}

/// Marks the job deleted (cancelling it if it runs), then deletes its files. The record goes
/// first, so nobody is handed a link to a file about to go; a crash in between leaves files that
/// the next `DELETE` of the same job removes (it always deletes them again).
async fn discard(state: &AppState, id: JobId) -> ApiResult<Job> {
    let job = match update_job(state.jobs.as_ref(), id, |j| j.delete(Utc::now())).await? {
        Update::Done(job) => {
            tracing::info!(job_id = %id, status = job.status.as_str(), "job deleted");
            metrics::counter!("minimoto_jobs_deleted_total").increment(1);
            job
        }
        // Deleted already: its files are deleted again below, in case a crash left some.
        Update::Refused(_, job) => job,
    };
    crash::point("delete-marked");
    for prefix in [layout::inputs_of(id), layout::outputs_of(id)] {
        state.blobs.delete_prefix(&prefix).await?;
    }
    Ok(job)
}

/// Download the video: redirects to a fresh expiring URL (so `curl -L` fetches the file).
#[utoipa::path(
    get, path = "/v1/jobs/{id}/video", tag = "jobs",
    params(("id" = JobId, Path, description = "The job id")),
    responses(
        (status = 302, description = "Redirect to the video", headers(("Location" = String))),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has no video (yet)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The video has expired and was deleted", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_video(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    redirect_to_output(&state, &caller, &id, "video", |o| Some(o.video_key.clone())).await
}

/// Download the poster (a JPEG frame of the video): redirects to a fresh expiring URL.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/poster", tag = "jobs",
    params(("id" = JobId, Path, description = "The job id")),
    responses(
        (status = 302, description = "Redirect to the poster", headers(("Location" = String))),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has no video (yet)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The outputs have expired and were deleted", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_poster(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    redirect_to_output(&state, &caller, &id, "poster", |o| {
        Some(o.poster_key.clone())
    })
    .await
}

/// Download the animated preview: redirects to a fresh expiring URL.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/preview", tag = "jobs",
    params(("id" = JobId, Path, description = "The job id")),
    responses(
        (status = 302, description = "Redirect to the preview (GIF or WebP)", headers(("Location" = String))),
        (status = 404, description = "No such job, or its options asked for no preview", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has no video (yet)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The outputs have expired and were deleted", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_preview(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    redirect_to_output(&state, &caller, &id, "preview", |o| o.preview_key.clone()).await
}

/// Download one thumbnail of the poster, by the size the options asked for: redirects to a fresh
/// expiring URL.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/thumbnails/{size}", tag = "jobs",
    params(
        ("id" = JobId, Path, description = "The job id"),
        ("size" = u32, Path, minimum = 16, maximum = 2048, description = "A size listed in the options' `thumbnails` (16–2048)"),
    ),
    responses(
        (status = 302, description = "Redirect to the JPEG thumbnail", headers(("Location" = String))),
        (status = 404, description = "No such job, or no thumbnail of that size", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has no video (yet)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The outputs have expired and were deleted", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_thumbnail(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, size)): Path<(String, String)>,
) -> ApiResult<Response> {
    use minimoto_common::spec::{MAX_THUMBNAIL, MIN_THUMBNAIL};
    // Checked before the job is looked at: no job has a thumbnail of a size outside the range.
    let size = size
        .parse::<u32>()
        .ok()
        .filter(|s| (MIN_THUMBNAIL..=MAX_THUMBNAIL).contains(s))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "a thumbnail of size {size:?}: sizes are whole pixels, {MIN_THUMBNAIL}–{MAX_THUMBNAIL}"
            ))
        })?;
    let what = format!("thumbnail of {size} px");
    redirect_to_output(&state, &caller, &id, &what, |o| {
        o.thumbnails
            .iter()
            .find(|t| t.size == size)
            .map(|t| t.key.clone())
    })
    .await
}

/// Redirects to a fresh expiring URL of the output `pick` finds in job `id`'s outputs: 409 while
/// the job has none yet (or ended without), 404 when the job has no such output, 410 once it has
/// expired.
async fn redirect_to_output(
    state: &AppState,
    caller: &Caller,
    id: &str,
    what: &str,
    pick: impl Fn(&Outputs) -> Option<String>,
) -> ApiResult<Response> {
    let job = load_job(state, caller, id).await?;
    let id = job.id;
    if job.purged_at.is_some() {
        return Err(ApiError::new(
            ErrorCode::Expired,
            format!("job {id} was deleted, and its files with it"),
        ));
    }
    let outputs = match (job.status, &job.outputs) {
        (Status::Succeeded, Some(o)) => o,
        (status @ (Status::Queued | Status::Running), _) => {
            return Err(ApiError::new(
                ErrorCode::NotReady,
                format!(
                    "job {id} is {}; poll it until it has succeeded",
                    status.as_str()
                ),
            ));
        }
        (status, _) => {
            return Err(ApiError::new(
                ErrorCode::NoVideo,
                format!("job {id} {} and has no video", status.as_str()),
            ));
        }
    };
    if let Some(at) = job.expires_at.filter(|_| job.files_expired(Utc::now())) {
        return Err(ApiError::new(
            ErrorCode::Expired,
            format!(
                "the files of job {id} expired at {} (this server keeps them {} after a job ends)",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                kept_for(job.retention.map_or(0, |r| r.files_seconds))
            ),
        ));
    }
    let key = pick(outputs).ok_or_else(|| {
        ApiError::not_found(format!("a {what} of job {id} (its options asked for none)"))
    })?;
    if state.blobs.size(&key).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::Expired,
            format!("the {what} of job {id} has expired"),
        ));
    }
    let url = state.blobs.url(&key, state.config.url_ttl).await?;
    let mut res = Redirect::to(&url.url).into_response();
    *res.status_mut() = StatusCode::FOUND;
    no_store(res.headers_mut());
    Ok(res)
}

/// A retention in words, in the largest unit that divides it: `30 days`, `6 hours`, `1 minute`,
/// `90 seconds`.
fn kept_for(seconds: u64) -> String {
    let (n, unit) = match seconds {
        s if s > 0 && s % 86_400 == 0 => (s / 86_400, "day"),
        s if s > 0 && s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s > 0 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Redirects carry a short-lived URL: caches must not keep them.
fn no_store(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
}
