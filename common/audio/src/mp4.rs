//! A guard run on MP4/M4A files before symphonia reads them. Its MP4 reader (0.5) sizes tables
//! from counts in the file without checking them (`Vec::with_capacity(count)`), and a metadata
//! `data` box from its declared length: a 100-byte file claiming 4 billion entries asks for 32 GiB
//! at once, and a failed allocation aborts the whole process. So every box inside `moov` and
//! `moof` must fit in its parent, and every sample table's entries in their box.

use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom},
    path::Path,
};

use super::AudioError;

/// Boxes whose children are boxes (`meta` is handled apart: it may start with 4 bytes of flags).
const CONTAINERS: [&[u8; 4]; 12] = [
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"moof", b"traf", b"mvex", b"udta",
    b"dinf", b"ilst",
];

/// Deeper than any real file nests.
const MAX_DEPTH: u32 = 16;

/// Checks the box structure of the MP4 at `path` (see the module doc).
pub(crate) fn check(path: &Path) -> Result<(), AudioError> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut at = 0;
    while at + 8 <= len {
        let (kind, header, size) = box_header(&mut file, at, len)?;
        if &kind == b"moov" || &kind == b"moof" {
            if size > len - at {
                return Err(broken(&kind, "runs past the end of the file"));
            }
            walk(&mut file, at + header, at + size, 1)?;
        }
        if size == 0 {
            break;
        }
        at += size;
    }
    Ok(())
}

/// The box at `at`: its type, header length and whole size (to `end` for a size of 0).
fn box_header(file: &mut File, at: u64, end: u64) -> Result<([u8; 4], u64, u64), AudioError> {
    let mut head = [0u8; 8];
    file.seek(SeekFrom::Start(at))?;
    file.read_exact(&mut head)?;
    let kind = [head[4], head[5], head[6], head[7]];
    let (header, size) = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
        0 => (8, end - at),
        1 => (16, read_u64(file)?),
        n => (8, u64::from(n)),
    };
    if size < header && size != 0 {
        return Err(broken(&kind, "is smaller than its own header"));
    }
    Ok((kind, header, size))
}

fn walk(file: &mut File, start: u64, end: u64, depth: u32) -> Result<(), AudioError> {
    if depth > MAX_DEPTH {
        return Err(AudioError::Corrupt("its MP4 boxes nest too deep".into()));
    }
    let mut at = start;
    while at + 8 <= end {
        let (kind, header, size) = box_header(file, at, end)?;
        if size > end - at {
            return Err(broken(&kind, "runs past the box that holds it"));
        }
        let body = (at + header, at + size);
        if CONTAINERS.contains(&&kind) {
            walk(file, body.0, body.1, depth + 1)?;
        } else if &kind == b"meta" {
            // ISO's `meta` is a full box (4 bytes of version and flags first); QuickTime's is not.
            let flags = read_u32_at(file, body.0)?;
            let skip = if flags == 0 { 4 } else { 0 };
            walk(file, body.0 + skip, body.1, depth + 1)?;
        } else if let Some(entry) = entry_size(&kind) {
            check_table(file, &kind, body, entry)?;
        }
        at += size;
    }
    Ok(())
}

/// Bytes per entry of a sample table that symphonia sizes from its count.
fn entry_size(kind: &[u8; 4]) -> Option<u64> {
    match kind {
        b"stco" | b"stss" => Some(4),
        b"co64" | b"stts" | b"ctts" => Some(8),
        b"stsc" => Some(12),
        b"stsz" => Some(4),
        _ => None,
    }
}

/// The table's count (after its version and flags; `stsz` first has a fixed sample size, and
/// lists entries only when that is 0) must fit the table's box.
fn check_table(
    file: &mut File,
    kind: &[u8; 4],
    (start, end): (u64, u64),
    entry: u64,
) -> Result<(), AudioError> {
    let (count_at, listed) = if kind == b"stsz" {
        (start + 8, read_u32_at(file, start + 4)? == 0)
    } else {
        (start + 4, true)
    };
    if count_at + 4 > end {
        return Err(broken(kind, "is too short for its count"));
    }
    let count = u64::from(read_u32_at(file, count_at)?);
    if listed && count * entry > end - (count_at + 4) {
        return Err(broken(
            kind,
            &format!(
                "claims {count} entries, more than its {} bytes hold",
                end - start
            ),
        ));
    }
    Ok(())
}

fn read_u32_at(file: &mut File, at: u64) -> io::Result<u32> {
    let mut b = [0u8; 4];
    file.seek(SeekFrom::Start(at))?;
    file.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_u64(file: &mut File) -> io::Result<u64> {
    let mut b = [0u8; 8];
    file.read_exact(&mut b)?;
    Ok(u64::from_be_bytes(b))
}

fn broken(kind: &[u8; 4], what: &str) -> AudioError {
    AudioError::Corrupt(format!(
        "its M4A structure is broken: the `{}` box {what}",
        String::from_utf8_lossy(kind)
    ))
}
