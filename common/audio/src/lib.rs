//! Reading a job's soundtrack before anything is stored: the container is told by its content
//! (never by the file name), and the part of the track a video uses is decoded, so a file that is
//! not audio, or whose sound does not decode, is refused at submit instead of failing a job later.
//!
//! Decoding stops once `needed_seconds` are proven (a song longer than the video is cut there):
//! the work is bounded by the video's length, not by the file's.

mod mp4;

use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom},
    path::Path,
};

use symphonia::core::{
    codecs::{CODEC_TYPE_NULL, DecoderOptions},
    errors::Error as Symphonia,
    formats::FormatOptions,
    io::MediaSourceStream,
    meta::MetadataOptions,
    probe::Hint,
};

/// What minimoto reads, for messages.
pub const SUPPORTED: &str = "MP3, AAC (ADTS or M4A), WAV, Ogg Vorbis or FLAC";

/// What a soundtrack is.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    /// The container, by content: `mp3`, `aac`, `m4a`, `wav`, `ogg` or `flac`; also the extension
    /// it is stored under.
    pub format: &'static str,
    /// The codec, as the decoder names it (`mp3`, `aac`, `pcm_s16le`, `vorbis`, `flac`).
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u32,
    /// The whole track's length when known: decoded to its end, or as the container declares it.
    pub duration_seconds: Option<f64>,
}

impl AudioInfo {
    /// The media type it is stored and served with.
    pub fn content_type(&self) -> &'static str {
        match self.format {
            "mp3" => "audio/mpeg",
            "aac" => "audio/aac",
            "m4a" => "audio/mp4",
            "wav" => "audio/wav",
            "ogg" => "audio/ogg",
            "flac" => "audio/flac",
            _ => "application/octet-stream",
        }
    }
}

/// Why a soundtrack cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// Not audio, or a container or codec minimoto does not read.
    #[error("{0}")]
    Unsupported(String),
    /// Audio whose sound does not decode.
    #[error("{0}")]
    Corrupt(String),
    #[error("could not read the audio: {0}")]
    Io(#[from] io::Error),
}

/// Most packets that may fail to decode, per hundred: real files carry the odd damaged frame
/// (which ffmpeg skips too); more means the file is broken.
const BAD_PACKETS_PER_HUNDRED: u64 = 1;

/// The container of `head` (the file's first bytes), by its magic numbers.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if at(0, b"RIFF") && at(8, b"WAVE") {
        Some("wav")
    } else if at(0, b"OggS") {
        Some("ogg")
    } else if at(0, b"fLaC") {
        Some("flac")
    } else if at(4, b"ftyp") {
        Some("m4a")
    } else if at(0, b"ID3") {
        // Without what follows the tag, MP3 is the likely guess ([`inspect`] looks past it).
        Some("mp3")
    } else if head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0 {
        // A frame sync: ADTS AAC has layer bits 00, MPEG audio (MP3) does not.
        Some(if head[1] & 0x06 == 0 { "aac" } else { "mp3" })
    } else {
        None
    }
}

/// The length of the ID3v2 tag `head` starts with (header, tag and footer), if it starts with one:
/// MP3 and ADTS AAC files often carry one, and the stream's own header only follows it.
pub fn id3_len(head: &[u8]) -> Option<u64> {
    if head.len() < 10 || &head[..3] != b"ID3" || head[6..10].iter().any(|b| b & 0x80 != 0) {
        return None;
    }
    let size = head[6..10]
        .iter()
        .fold(0u64, |n, &b| (n << 7) | u64::from(b));
    let footer = if head[5] & 0x10 != 0 { 10 } else { 0 };
    Some(10 + size + footer)
}

/// The container of the file at `path`: by its first bytes, or by those after an ID3v2 tag.
fn container(path: &Path) -> io::Result<Option<&'static str>> {
    let mut file = File::open(path)?;
    let mut head = [0u8; 12];
    let read = read_up_to(&mut file, &mut head)?;
    match id3_len(&head[..read]) {
        Some(skip) => {
            file.seek(SeekFrom::Start(skip))?;
            let read = read_up_to(&mut file, &mut head)?;
            // After the tag: MPEG audio or ADTS (another container would not carry one). Padding
            // or a second tag may come first: then MP3, the usual case, and the decoder, which
            // searches for the stream, has the last word.
            Ok(match sniff(&head[..read]) {
                Some(f @ ("mp3" | "aac")) => Some(f),
                _ if read > 0 => Some("mp3"),
                _ => None,
            })
        }
        None => Ok(sniff(&head[..read])),
    }
}

/// Reads as much of `buf` as the file holds.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Reads `path`: its container by content, its first audio track, and `needed_seconds` of its
/// sound decoded (all of it when shorter).
pub fn inspect(path: &Path, needed_seconds: f64) -> Result<AudioInfo, AudioError> {
    let unsupported =
        || AudioError::Unsupported(format!("it is not audio minimoto reads ({SUPPORTED})"));
    let format = container(path)?.ok_or_else(unsupported)?;
    if format == "m4a" {
        mp4::check(path)?;
    }

    let source = MediaSourceStream::new(Box::new(File::open(path)?), Default::default());
    let mut reader = symphonia::default::get_probe()
        .format(
            &Hint::new(),
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| match e {
            Symphonia::IoError(e) if e.kind() != io::ErrorKind::UnexpectedEof => AudioError::Io(e),
            Symphonia::Unsupported(_) => unsupported(),
            other => AudioError::Corrupt(format!("its {format} container does not read ({other})")),
        })?
        .format;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| AudioError::Unsupported(format!("the {format} file has no audio track")))?;
    let (track_id, params) = (track.id, track.codec_params.clone());
    let codecs = symphonia::default::get_codecs();
    let codec = codecs
        .get_codec(params.codec)
        .map_or_else(|| "unknown".to_owned(), |d| d.short_name.to_owned());
    let mut decoder = codecs
        .make(&params, &DecoderOptions::default())
        .map_err(|_| {
            AudioError::Unsupported(format!(
                "its codec ({codec} in {format}) is not one minimoto decodes ({SUPPORTED})"
            ))
        })?;

    let (mut frames, mut packets, mut bad) = (0u64, 0u64, 0u64);
    let mut rate = params.sample_rate;
    let mut channels = params.channels.map(|c| c.count() as u32);
    let mut ended = false;
    loop {
        let needed = rate.map_or(u64::MAX, |r| (needed_seconds * f64::from(r)).ceil() as u64);
        if frames >= needed.max(1) {
            break;
        }
        let packet = match reader.next_packet() {
            Ok(p) => p,
            Err(Symphonia::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                ended = true;
                break;
            }
            // A chained Ogg stream's next link: the first is the track.
            Err(Symphonia::ResetRequired) => {
                ended = true;
                break;
            }
            Err(Symphonia::IoError(e)) => return Err(AudioError::Io(e)),
            Err(e) => {
                return Err(AudioError::Corrupt(format!(
                    "the {format} file breaks off after {packets} packets ({e})"
                )));
            }
        };
        if packet.track_id() != track_id {
            continue;
        }
        packets += 1;
        match decoder.decode(&packet) {
            Ok(sound) => {
                frames += sound.frames() as u64;
                let spec = sound.spec();
                rate = rate.or(Some(spec.rate));
                channels = channels.or(Some(spec.channels.count() as u32));
            }
            Err(Symphonia::DecodeError(_)) | Err(Symphonia::IoError(_)) => bad += 1,
            Err(e) => {
                return Err(AudioError::Corrupt(format!(
                    "its {codec} sound does not decode ({e})"
                )));
            }
        }
    }
    let (Some(sample_rate), Some(channels)) = (rate, channels) else {
        return Err(AudioError::Corrupt(format!(
            "no sound decodes from the {format} file"
        )));
    };
    if frames == 0 {
        return Err(AudioError::Corrupt(format!(
            "no sound decodes from the {format} file ({packets} packets, none whole)"
        )));
    }
    if bad > 2 + packets * BAD_PACKETS_PER_HUNDRED / 100 {
        return Err(AudioError::Corrupt(format!(
            "{bad} of {packets} {codec} packets do not decode: the file is damaged"
        )));
    }
    let rate = f64::from(sample_rate);
    let duration_seconds = if ended {
        Some(frames as f64 / rate)
    } else {
        params.n_frames.map(|n| n as f64 / rate)
    };
    Ok(AudioInfo {
        format,
        codec,
        sample_rate,
        channels,
        duration_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_told_by_their_magic_numbers() {
        let cases: [(&[u8], Option<&str>); 9] = [
            (b"RIFF\x24\0\0\0WAVEfmt ", Some("wav")),
            (b"OggS\0\x02\0\0", Some("ogg")),
            (b"fLaC\0\0\0\x22", Some("flac")),
            (b"\0\0\0\x20ftypM4A ", Some("m4a")),
            (b"ID3\x04\0\0\0\0", Some("mp3")),
            (&[0xFF, 0xFB, 0x90, 0x64], Some("mp3")),
            (&[0xFF, 0xF1, 0x50, 0x80], Some("aac")),
            (b"\x89PNG\r\n\x1a\n", None),
            (b"RIFF\x24\0\0\0AVI ", None),
        ];
        for (head, expected) in cases {
            assert_eq!(sniff(head), expected, "{head:?}");
        }
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn an_id3_tag_is_measured_to_find_the_stream_after_it() {
        // Syncsafe size 0x01 0x7F = 255 bytes, no footer: 10 + 255.
        assert_eq!(id3_len(b"ID3\x04\0\0\0\0\x01\x7F"), Some(265));
        // With a footer (flag 0x10): 10 more.
        assert_eq!(id3_len(b"ID3\x04\0\x10\0\0\0\x0A"), Some(30));
        // Not a tag, or a size byte with its top bit set (not syncsafe).
        assert_eq!(id3_len(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(id3_len(b"ID3\x04\0\0\x80\0\0\0"), None);
    }
}
