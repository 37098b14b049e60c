//! Soundtracks made by the installed ffmpeg in every accepted format, and broken ones.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use minimoto_audio::{AudioError, inspect};

/// A `seconds` long two-tone sine at `rate`, encoded by ffmpeg with `codec_args` into `name`.
fn tone(dir: &Path, name: &str, seconds: f64, rate: u32, codec_args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let source = format!("sine=frequency=440:sample_rate={rate}:duration={seconds}");
    let out = Command::new("ffmpeg")
        .args([
            "-v", "error", "-y", "-f", "lavfi", "-i", &source, "-ac", "2",
        ])
        .args(codec_args)
        .arg(&path)
        .output()
        .expect("ffmpeg runs (the test command installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

#[test]
fn every_supported_format_reads_with_its_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, &[&str], &str, &str); 6] = [
        (
            "a.mp3",
            &["-c:a", "libmp3lame", "-b:a", "128k"],
            "mp3",
            "mp3",
        ),
        ("a.m4a", &["-c:a", "aac"], "m4a", "aac"),
        ("a.aac", &["-c:a", "aac", "-f", "adts"], "aac", "aac"),
        ("a.wav", &["-c:a", "pcm_s16le"], "wav", "pcm_s16le"),
        ("a.ogg", &["-c:a", "libvorbis"], "ogg", "vorbis"),
        ("a.flac", &["-c:a", "flac"], "flac", "flac"),
    ];
    for (name, args, format, codec) in cases {
        let path = tone(dir.path(), name, 3.0, 44_100, args);
        let info = inspect(&path, 60.0).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.format, format, "{name}");
        assert_eq!(info.codec, codec, "{name}");
        assert_eq!((info.sample_rate, info.channels), (44_100, 2), "{name}");
        let seconds = info.duration_seconds.expect("decoded to the end");
        // Lossy codecs pad to whole frames (a frame of MP3 is 1152 samples, 26 ms).
        assert!((seconds - 3.0).abs() < 0.1, "{name}: {seconds} s");
    }
}

#[test]
fn only_what_the_video_needs_is_decoded_and_the_declared_length_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wav = tone(dir.path(), "long.wav", 20.0, 48_000, &["-c:a", "pcm_s16le"]);
    let info = inspect(&wav, 2.0).expect("reads");
    // Stopped at 2 s, yet the WAV header tells the whole length.
    assert_eq!(info.duration_seconds, Some(20.0));
}

#[test]
fn what_is_not_audio_is_unsupported_and_damaged_sound_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let png = dir.path().join("photo.mp3");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").expect("write");
    let e = inspect(&png, 5.0).expect_err("a PNG named .mp3");
    assert!(matches!(e, AudioError::Unsupported(_)), "{e:?}");
    assert!(e.to_string().contains("MP3, AAC"), "{e}");

    // Opus in Ogg: a container minimoto reads, a codec it does not decode.
    let opus = tone(
        dir.path(),
        "a.opus",
        2.0,
        48_000,
        &["-c:a", "libopus", "-f", "ogg"],
    );
    let e = inspect(&opus, 5.0).expect_err("opus");
    assert!(matches!(e, AudioError::Unsupported(_)), "{e:?}");
    assert!(e.to_string().contains("codec"), "{e}");

    // A FLAC whose frames are overwritten after the header: every frame fails its checksum.
    let flac = tone(dir.path(), "a.flac", 3.0, 44_100, &["-c:a", "flac"]);
    let mut bytes = std::fs::read(&flac).expect("read");
    let from = bytes.len() / 10;
    let mut x: u32 = 0x1234_5678;
    for b in &mut bytes[from..] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    std::fs::write(&flac, &bytes).expect("write");
    let e = inspect(&flac, 5.0).expect_err("damaged flac");
    assert!(matches!(e, AudioError::Corrupt(_)), "{e:?}");

    // An MP3 frame header and nothing after it.
    let stub = dir.path().join("stub.mp3");
    std::fs::write(&stub, [0xFF, 0xFB, 0x90, 0x64]).expect("write");
    let e = inspect(&stub, 5.0).expect_err("no sound");
    assert!(!matches!(e, AudioError::Io(_)), "{e:?}");
}

#[test]
fn a_truncated_file_reads_as_the_sound_it_still_has() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mp3 = tone(dir.path(), "a.mp3", 4.0, 44_100, &["-c:a", "libmp3lame"]);
    let bytes = std::fs::read(&mp3).expect("read");
    std::fs::write(&mp3, &bytes[..bytes.len() / 2]).expect("write");
    let info = inspect(&mp3, 60.0).expect("half an MP3 still plays");
    let seconds = info.duration_seconds.expect("decoded to its end");
    assert!((1.5..2.5).contains(&seconds), "{seconds} s");
}

#[test]
fn an_id3_tag_in_front_of_adts_aac_is_looked_past() {
    let dir = tempfile::tempdir().expect("tempdir");
    let aac = tone(
        dir.path(),
        "a.aac",
        2.0,
        44_100,
        &["-c:a", "aac", "-f", "adts"],
    );
    // A 300-byte ID3v2.4 tag (syncsafe size 290: 0x02 0x22) of padding before the stream.
    let mut tagged = b"ID3\x04\x00\x00\x00\x00\x02\x22".to_vec();
    tagged.extend(std::iter::repeat_n(0u8, 290));
    tagged.extend(std::fs::read(&aac).expect("read"));
    let path = dir.path().join("tagged.aac");
    std::fs::write(&path, tagged).expect("write");
    let info = inspect(&path, 60.0).expect("reads");
    assert_eq!((info.format, info.codec.as_str()), ("aac", "aac"));
    // Padding after the tag, before the first MP3 frame: read as players read it.
    let mp3 = tone(
        dir.path(),
        "b.mp3",
        2.0,
        44_100,
        &["-c:a", "libmp3lame", "-id3v2_version", "0"],
    );
    let mut padded = b"ID3\x04\x00\x00\x00\x00\x00\x0A".to_vec();
    padded.extend(std::iter::repeat_n(0u8, 10));
    padded.extend(std::iter::repeat_n(0u8, 64));
    padded.extend(std::fs::read(&mp3).expect("read"));
    let path = dir.path().join("padded.mp3");
    std::fs::write(&path, padded).expect("write");
    let info = inspect(&path, 60.0).expect("padding after the tag reads");
    assert_eq!((info.format, info.codec.as_str()), ("mp3", "mp3"));
    // A tag with nothing after it is no audio.
    let empty = dir.path().join("empty.mp3");
    std::fs::write(&empty, b"ID3\x04\x00\x00\x00\x00\x00\x00").expect("write");
    let e = inspect(&empty, 5.0).expect_err("a bare tag");
    assert!(matches!(e, AudioError::Unsupported(_)), "{e:?}");
}

/// The offset of the first `kind` box in `bytes` (its size field), for editing tests.
fn box_at(bytes: &[u8], kind: &[u8; 4]) -> usize {
    bytes.windows(4).position(|w| w == kind).expect("the box") - 4
}

#[test]
fn an_m4a_whose_tables_claim_more_than_the_file_holds_is_refused_not_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m4a = tone(dir.path(), "a.m4a", 1.0, 44_100, &["-c:a", "aac"]);
    let good = std::fs::read(&m4a).expect("read");
    inspect(&m4a, 5.0).expect("the file as made reads");
    // Each sample table's count set to 4 billion (symphonia would ask for up to 48 GiB at once).
    for table in [b"stco", b"stsc", b"stts", b"stsz"] {
        let mut bytes = good.clone();
        let at = box_at(&bytes, table);
        // stsz: version/flags, sample size 0 (a list follows), then the count.
        let count = if table == b"stsz" {
            bytes[at + 12..at + 16].copy_from_slice(&0u32.to_be_bytes());
            at + 16
        } else {
            at + 12
        };
        bytes[count..count + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let path = dir.path().join("hostile.m4a");
        std::fs::write(&path, &bytes).expect("write");
        let e = inspect(&path, 5.0).expect_err("a table larger than the file");
        assert!(matches!(e, AudioError::Corrupt(_)), "{table:?}: {e:?}");
        assert!(
            e.to_string()
                .contains(std::str::from_utf8(table).expect("ascii")),
            "{e}"
        );
    }
    // A box inside `moov` that claims to run past it.
    let mut bytes = good.clone();
    let at = box_at(&bytes, b"trak");
    bytes[at..at + 4].copy_from_slice(&0x7FFF_FFF0u32.to_be_bytes());
    let path = dir.path().join("overrun.m4a");
    std::fs::write(&path, &bytes).expect("write");
    let e = inspect(&path, 5.0).expect_err("a box past its parent");
    assert!(matches!(e, AudioError::Corrupt(_)), "{e:?}");
}
