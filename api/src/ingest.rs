//! Receiving a job submission: multipart parts are streamed to a scratch directory (never held
//! whole in memory) under byte limits, then the options, the soundtrack and every photo are
//! checked before anything is stored. A rejected request leaves nothing behind: the scratch directory is removed
//! when the [`Upload`] is dropped.
//!
//! Each photo's check starts as soon as its part is on disk, while the next parts stream in: an
//! upload of many photos then takes about as long as the slower of the two, not their sum. A
//! request runs at most one check a core at a time (so one large upload cannot queue hundreds of
//! checks ahead of everyone else's at the shared [`Decodes`]). The answer is still decided in the
//! same order (the body, then the options, the soundtrack, then the photos in upload order). When
//! a request fails, its checks not yet running never start; a decode already running finishes
//! (holding its share of the budget until then) and its result is dropped.

use minimoto_common::ErrorCode;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use axum::{
    extract::multipart::{Field, Multipart, MultipartError},
    http::StatusCode,
};
use minimoto_audio::AudioInfo;
use minimoto_common::{
    job::{AudioReport, ImageReport},
    limits::Limits,
    spec::{Order, RenderSpec, Violation},
};
use minimoto_photo::{self as photo, PhotoError, PhotoInfo};
use tokio::{io::AsyncWriteExt, sync::Semaphore};
use tokio_util::task::AbortOnDropHandle;

use crate::{
    decodes::Decodes,
    error::{ApiError, ApiResult},
    pace::Watch,
};

/// Largest `options` part: a render spec is a few hundred bytes.
const MAX_OPTIONS_BYTES: usize = 64 * 1024;

/// Most bytes the multipart parser may hold without handing them on as part data: a part's
/// headers, the preamble, and the tail of a chunk it cannot yet tell from a boundary.
pub const MAX_UNPARSED_BYTES: u64 = 1024 * 1024;

/// Longest part file name the job keeps (longer ones are cut, not refused: the name is only a label).
const MAX_FILE_NAME_CHARS: usize = 255;

/// A checked submission, staged on local disk.
#[derive(Debug)]
pub struct Upload {
    pub images: Vec<StagedImage>,
    pub audio: Option<StagedAudio>,
    pub options: RenderSpec,
    _dir: tempfile::TempDir,
}

#[derive(Debug)]
pub struct StagedImage {
    pub path: PathBuf,
    pub file_name: Option<String>,
    pub bytes: u64,
    pub info: PhotoInfo,
}

impl StagedImage {
    /// What the job record keeps of it.
    pub fn report(&self) -> ImageReport {
        ImageReport {
            file_name: self.file_name.clone(),
            format: self.info.format.to_owned(),
            width: self.info.width,
            height: self.info.height,
            orientation: self.info.orientation,
            taken: self.info.taken,
            bytes: self.bytes,
        }
    }
}

/// The soundtrack, checked.
#[derive(Debug)]
pub struct StagedAudio {
    pub path: PathBuf,
    pub file_name: Option<String>,
    pub bytes: u64,
    pub info: AudioInfo,
}

impl StagedAudio {
    /// What the job record keeps of it.
    pub fn report(&self) -> AudioReport {
        AudioReport {
            file_name: self.file_name.clone(),
            format: self.info.format.to_owned(),
            codec: self.info.codec.clone(),
            sample_rate: self.info.sample_rate,
            channels: self.info.channels,
            duration_seconds: self.info.duration_seconds,
            bytes: self.bytes,
        }
    }
}

struct Received {
    path: PathBuf,
    file_name: Option<String>,
    bytes: u64,
}

/// Free bytes where uploads are staged; `StorageFull` when fewer than the server keeps free
/// (`ApiConfig::min_free_bytes`), so an upload is refused before its first byte is read rather
/// than when the disk runs out half-way.
pub async fn staging_room(config: &crate::ApiConfig) -> minimoto_common::Result<u64> {
    let (dir, min) = (config.scratch_dir.clone(), config.min_free_bytes);
    let free = tokio::task::spawn_blocking(move || {
        // The staging directory is made by the first upload: measure what holds it.
        let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(&dir);
        minimoto_runtime::scratch::free_bytes(existing)
    })
    .await
    .map_err(|e| minimoto_common::Error::backend("filesystem", e))??;
    if free < min {
        return Err(minimoto_common::Error::StorageFull {
            backend: "filesystem",
            message: format!(
                "{free} bytes free where uploads are staged, fewer than the {min} this server keeps free"
            ),
        });
    }
    Ok(free)
}

/// What a failed read of the body means: the pace's verdict when it cut the stream (stalled,
/// too slow, too much buffered), the body cap, or a malformed body.
fn multipart_error(e: MultipartError, watch: &Watch, limits: &Limits) -> ApiError {
    if let Some(fault) = watch.fault() {
        return fault.to_api_error();
    }
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return crate::body_too_large(limits);
    }
    ApiError::new(
        ErrorCode::BadMultipart,
        format!("the multipart body could not be read: {}", e.body_text()),
    )
}

/// Reads the whole multipart body, checking limits as bytes arrive, then checks the options (and
/// with `check`, the rules of the caller's own, such as the callback's destination) and decodes
/// every photo once (on the blocking pool, a few at a time) to prove it is whole.
/// `watch` is the body's [`crate::pace::Paced`] stream: every byte of part data read is reported
/// to it, and its fault explains a cut body.
pub async fn receive(
    mut multipart: Multipart,
    watch: &Watch,
    limits: &Limits,
    scratch: &Path,
    decodes: &Arc<Decodes>,
    check: &(dyn Fn(&RenderSpec) -> Vec<Violation> + Sync),
) -> ApiResult<Upload> {
    tokio::fs::create_dir_all(scratch)
        .await
        .map_err(ApiError::staging)?;
    let dir = tempfile::Builder::new()
        .prefix("upload-")
        .tempdir_in(scratch)
        .map_err(ApiError::staging)?;
    // Each photo's check, started as soon as it is on disk; one a core at a time.
    let mut checks: Vec<AbortOnDropHandle<ApiResult<StagedImage>>> = Vec::new();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let slots = Arc::new(Semaphore::new(cores));
    let mut options: Option<Vec<u8>> = None;
    let mut audio: Option<Received> = None;
    let mut total: u64 = 0;

    while let Some(field) = {
        watch.awaiting_part(true);
        let next = multipart.next_field().await;
        watch.awaiting_part(false);
        next.map_err(|e| multipart_error(e, watch, limits))?
    } {
        match field.name() {
            Some("images") => {
                if checks.len() as u64 >= u64::from(limits.max_images) {
                    return Err(ApiError::new(
                        ErrorCode::TooManyImages,
                        format!("a job takes at most {} images", limits.max_images),
                    ));
                }
                let index = checks.len() + 1;
                let path = dir.path().join(format!("{index:04}"));
                // Kept in the job record: bounded, so 500 photos cannot outgrow a record.
                let file_name = field
                    .file_name()
                    .map(|n| n.chars().take(MAX_FILE_NAME_CHARS).collect());
                let part = Part::Image(index);
                let bytes = stream_to_file(field, watch, &path, part, limits, &mut total).await?;
                let received = Received {
                    path,
                    file_name,
                    bytes,
                };
                checks.push(start_check(index, received, limits, decodes, &slots));
            }
            Some("audio") => {
                if audio.is_some() {
                    return Err(ApiError::new(
                        ErrorCode::DuplicatePart,
                        "the `audio` part was sent twice: a video has one soundtrack",
                    ));
                }
                let path = dir.path().join("audio");
                let file_name = field
                    .file_name()
                    .map(|n| n.chars().take(MAX_FILE_NAME_CHARS).collect());
                let bytes =
                    stream_to_file(field, watch, &path, Part::Audio, limits, &mut total).await?;
                audio = Some(Received {
                    path,
                    file_name,
                    bytes,
                });
            }
            Some("options") => {
                if options.is_some() {
                    return Err(ApiError::new(
                        ErrorCode::DuplicatePart,
                        "the `options` part was sent twice",
                    ));
                }
                options = Some(read_small(field, watch, MAX_OPTIONS_BYTES, limits).await?);
            }
            other => {
                return Err(ApiError::new(
                    ErrorCode::UnexpectedPart,
                    format!(
                        "unexpected part `{}`: send photos as `images` file parts, the render options as an `options` JSON part and a soundtrack as an `audio` file part",
                        other.unwrap_or("")
                    ),
                ));
            }
        }
    }
    if checks.is_empty() {
        return Err(ApiError::new(
            ErrorCode::NoImages,
            "send at least one photo as an `images` file part",
        ));
    }

    let options = match options {
        Some(json) => {
            RenderSpec::from_json(&json).map_err(|v| ApiError::invalid_options(vec![v]))?
        }
        None => RenderSpec::default(),
    };
    let count = u32::try_from(checks.len()).unwrap_or(u32::MAX);
    let mut violations = options.validate(count, limits);
    violations.extend(check(&options));
    if !violations.is_empty() {
        return Err(ApiError::invalid_options(violations));
    }

    let audio = match audio {
        Some(r) => Some(inspect_audio(r, options.start_of(checks.len()), decodes).await?),
        None => None,
    };
    let mut images = Vec::with_capacity(checks.len());
    for check in checks {
        // The first bad photo in upload order is the one reported.
        images.push(check.await.map_err(ApiError::internal)??);
    }
    let order = video_order(&images, options.order);
    let mut slots: Vec<Option<StagedImage>> = images.into_iter().map(Some).collect();
    Ok(Upload {
        images: order.iter().filter_map(|&i| slots[i].take()).collect(),
        options: options.reordered(&order),
        audio,
        _dir: dir,
    })
}

/// The upload indices of the photos in the order the video shows them: a stable sort, so ties
/// (and photos without a name or a date, which go last) keep their upload order.
fn video_order(images: &[StagedImage], order: Order) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..images.len()).collect();
    match order {
        Order::Upload => {}
        Order::Filename => indices.sort_by(|&a, &b| {
            match (&images[a].file_name, &images[b].file_name) {
                // Case does not separate `IMG_2` from `img_10`; it only breaks exact ties.
                (Some(x), Some(y)) => {
                    alphanumeric_sort::compare_str(x.to_lowercase(), y.to_lowercase())
                        .then_with(|| alphanumeric_sort::compare_str(x, y))
                }
                (x, y) => y.is_some().cmp(&x.is_some()),
            }
        }),
        Order::Taken => {
            indices.sort_by_key(|&i| (images[i].info.taken.is_none(), images[i].info.taken))
        }
    }
    indices
}

/// Which file part is streaming, for its limit and its messages.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// The 1-based photo.
    Image(usize),
    Audio,
}

async fn stream_to_file(
    mut field: Field<'_>,
    watch: &Watch,
    path: &Path,
    part: Part,
    limits: &Limits,
    total: &mut u64,
) -> ApiResult<u64> {
    let (max, code, name) = match part {
        Part::Image(index) => (
            limits.max_image_bytes,
            ErrorCode::ImageTooLarge,
            format!("image {index}"),
        ),
        Part::Audio => (
            limits.max_audio_bytes,
            ErrorCode::AudioTooLarge,
            "the audio".to_owned(),
        ),
    };
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(ApiError::staging)?;
    let mut bytes: u64 = 0;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| multipart_error(e, watch, limits))?
    {
        watch.parsed(chunk.len());
        bytes += chunk.len() as u64;
        *total += chunk.len() as u64;
        if bytes > max {
            let per = match part {
                Part::Image(_) => "per image",
                Part::Audio => "for a soundtrack",
            };
            return Err(ApiError::new(
                code,
                format!("{name} is larger than the limit of {max} bytes {per}"),
            ));
        }
        if *total > limits.max_total_bytes {
            return Err(ApiError::new(
                ErrorCode::UploadTooLarge,
                format!(
                    "the files together are larger than the limit of {} bytes",
                    limits.max_total_bytes
                ),
            ));
        }
        file.write_all(&chunk).await.map_err(ApiError::staging)?;
    }
    file.flush().await.map_err(ApiError::staging)?;
    Ok(bytes)
}

async fn read_small(
    mut field: Field<'_>,
    watch: &Watch,
    max: usize,
    limits: &Limits,
) -> ApiResult<Vec<u8>> {
    let mut buf = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| multipart_error(e, watch, limits))?
    {
        watch.parsed(chunk.len());
        if buf.len() + chunk.len() > max {
            return Err(ApiError::new(
                ErrorCode::OptionsTooLarge,
                format!("the `options` part is over {max} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Checks the soundtrack: audio by its content, and decodable for the `video_seconds` it plays.
/// Admitted by the [`Decodes`] the photos share, at twice its size: a container's tags and cover
/// picture are read into memory whole (a 12 MB cover costs 27 MB), so the file's size bounds it.
async fn inspect_audio(
    r: Received,
    video_seconds: f64,
    decodes: &Arc<Decodes>,
) -> ApiResult<StagedAudio> {
    const DECODER: u64 = 8 << 20;
    let admission = decodes.admit(2 * r.bytes + DECODER).await;
    let path = r.path.clone();
    let info = tokio::task::spawn_blocking(move || {
        let _admission = admission;
        // A decoder that panics on a malformed file refuses that file, as for photos.
        std::panic::catch_unwind(|| minimoto_audio::inspect(&path, video_seconds)).unwrap_or_else(
            |_| {
                Err(minimoto_audio::AudioError::Corrupt(
                    "the audio decoder could not make sense of it".into(),
                ))
            },
        )
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::audio(r.file_name.as_deref(), &e))?;
    Ok(StagedAudio {
        path: r.path,
        file_name: r.file_name,
        bytes: r.bytes,
        info,
    })
}

/// Starts checking photo `index` (1-based): its header, then a decode that reads all of it.
/// The check is admitted by the [`Decodes`] every request shares, with the memory its header
/// says it may need, so concurrent uploads hold at most the cores and the budget whatever their
/// number of photos; `slots` (the request's own) keeps its checks to one a core. Dropping the
/// handle stops a check still waiting for either.
fn start_check(
    index: usize,
    r: Received,
    limits: &Limits,
    decodes: &Arc<Decodes>,
    slots: &Arc<Semaphore>,
) -> AbortOnDropHandle<ApiResult<StagedImage>> {
    let (limits, decodes, slots) = (limits.clone(), decodes.clone(), slots.clone());
    AbortOnDropHandle::new(tokio::spawn(async move {
        let _slot = slots
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("the semaphore is never closed"));
        let path = r.path.clone();
        let photo_error = |e: PhotoError| ApiError::photo(index, r.file_name.as_deref(), &e);
        let cost = {
            let (path, limits) = (path.clone(), limits.clone());
            tokio::task::spawn_blocking(move || photo::inspect_cost(&path, &limits))
                .await
                .map_err(ApiError::internal)?
                .map_err(photo_error)?
        };
        let admission = decodes.admit(cost).await;
        let info = tokio::task::spawn_blocking(move || {
            let _admission = admission;
            photo::inspect(&path, &limits)
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(photo_error)?;
        Ok(StagedImage {
            path: r.path,
            file_name: r.file_name,
            bytes: r.bytes,
            info,
        })
    }))
}
