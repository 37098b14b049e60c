//! Where a job's blobs live: the one place the key layout is written.
//!
//! Photos sit under [`INPUTS`] and rendered files under [`OUTPUTS`], each in a folder named by the
//! job id, so retention rules can tell them apart by prefix (the S3 lifecycle rule expires
//! [`INPUTS`]) and a job's files are one prefix to delete. Output keys are fixed per job, so a
//! re-run after a crash overwrites instead of duplicating.

use crate::{
    ids::JobId,
    spec::{Format, PreviewFormat},
};

/// The prefix of every uploaded photo.
pub const INPUTS: &str = "inputs/";
/// The prefix of every rendered output.
pub const OUTPUTS: &str = "outputs/";

/// The folder of a job's photos.
pub fn inputs_of(job: JobId) -> String {
    format!("{INPUTS}{job}/")
}

/// The folder of a job's outputs.
pub fn outputs_of(job: JobId) -> String {
    format!("{OUTPUTS}{job}/")
}

/// The key of the job's `index`-th photo (0-based, in upload order), with its format's extension.
pub fn input(job: JobId, index: usize, extension: &str) -> String {
    format!("{}{index:04}.{extension}", inputs_of(job))
}

/// The job's soundtrack, with its format's extension (beside the photos: it expires with them).
pub fn audio(job: JobId, extension: &str) -> String {
    format!("{}audio.{extension}", inputs_of(job))
}

/// The rendered video.
pub fn video(job: JobId, format: Format) -> String {
    format!("{}video.{}", outputs_of(job), format.extension())
}

/// The poster frame.
pub fn poster(job: JobId) -> String {
    format!("{}poster.jpg", outputs_of(job))
}

/// The poster's thumbnail of `size` pixels (its longest side).
pub fn thumbnail(job: JobId, size: u32) -> String {
    format!("{}thumb-{size}.jpg", outputs_of(job))
}

/// The animated preview.
pub fn preview(job: JobId, format: PreviewFormat) -> String {
    format!("{}preview.{}", outputs_of(job), format.extension())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_and_outputs_are_apart_and_under_their_job() {
        let id = JobId::new();
        let photo = input(id, 7, "jpeg");
        assert_eq!(photo, format!("inputs/{id}/0007.jpeg"));
        assert!(photo.starts_with(&inputs_of(id)) && photo.starts_with(INPUTS));
        let outputs = [
            video(id, Format::Mp4),
            video(id, Format::Webm),
            poster(id),
            thumbnail(id, 100),
            thumbnail(id, 300),
            preview(id, PreviewFormat::Gif),
            preview(id, PreviewFormat::Webp),
        ];
        for out in &outputs {
            assert!(
                out.starts_with(&outputs_of(id)) && out.starts_with(OUTPUTS),
                "{out}"
            );
        }
        let distinct: std::collections::HashSet<_> = outputs.iter().collect();
        assert_eq!(distinct.len(), outputs.len(), "{outputs:?}");
        assert!(video(id, Format::Webm).ends_with("/video.webm"));
        assert_ne!(inputs_of(id), inputs_of(JobId::new()));
        let sound = audio(id, "mp3");
        assert!(
            sound.starts_with(&inputs_of(id)) && sound != photo,
            "{sound}"
        );
    }
}
