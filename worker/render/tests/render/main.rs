//! The render engine's tests, one binary: renders with the real ffmpeg, checked with ffprobe
//! (`render`), every option rendered for real (`options`), the outputs besides an MP4 (`outputs`:
//! WebM, thumbnails, previews, soundtracks), sub-pixel motion on composed frames (`smooth`), and
//! an encoder that dies mid-render (`encoder_failure`).

mod encoder_failure;
mod options;
mod outputs;
mod render;
mod smooth;
