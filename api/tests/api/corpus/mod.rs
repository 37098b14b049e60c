//! The hostile-input corpus (`cases`) sent to the API in-process, byte for byte over TCP, so that
//! no client library tidies a request up (paths are sent as is, framing as written).
//!
//! Every case must get its status and `code` as problem+json with a matching `status`, a
//! non-empty `detail` that names no server path, and `nosniff`; after the whole corpus the API
//! must have kept nothing (no staged upload, no blob but the one the download cases stored, no
//! message, no job). A case in `cases::KNOWN_WRONG` must still get its recorded wrong answer, so
//! a fix is noticed and the entry removed.

pub mod cases;

use std::{collections::HashSet, path::Path, time::Duration};

use chrono::Utc;
use minimoto_common::JobId;
use minimoto_local::signing::UrlSigner;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::TestApi;
use cases::{KNOWN_WRONG, Request, STATEFUL, Stateful};

/// An answer as read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Lower-cased names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The problem's `code`; empty when the body is not a problem.
    fn code(&self) -> String {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The answer in one line, for failure reports.
    fn summary(&self) -> String {
        let body: String = String::from_utf8_lossy(&self.body)
            .chars()
            .take(300)
            .collect();
        format!("{} {}: {body}", self.status, shown(&self.code()))
    }
}

/// A code for a report: an empty one is an answer that is not a problem.
fn shown(code: &str) -> &str {
    if code.is_empty() {
        "(no problem body)"
    } else {
        code
    }
}

/// Sends `request` as raw HTTP/1.1 (writing in a task of its own, so that a server answering
/// before it has read the whole body is heard) and reads the answer.
async fn send(api: &TestApi, request: &Request) -> Result<Answer, String> {
    let addr = api.base.trim_start_matches("http://");
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut reader, mut writer) = stream.into_split();
    let bytes = request.to_wire();
    // Write errors are expected: the server may answer and close before the body is done.
    let writing = tokio::spawn(async move {
        for piece in bytes.chunks(64 * 1024) {
            if writer.write_all(piece).await.is_err() {
                return;
            }
        }
        // Keep the write half open: closing it would end a body that is meant to stall.
        std::future::pending::<()>().await;
    });
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            // A reset after the answer (the server closed with body bytes unread) ends it.
            let n = reader.read(&mut chunk).await.unwrap_or(0);
            buf.extend_from_slice(&chunk[..n]);
            if let Some(answer) = parse(&buf, n == 0) {
                return answer;
            }
            if n == 0 {
                return Err(format!(
                    "the connection closed after {} bytes without a whole answer: {:?}",
                    buf.len(),
                    String::from_utf8_lossy(&buf)
                ));
            }
        }
    })
    .await;
    writing.abort();
    read.map_err(|_| "no answer within 30 s".to_owned())?
}

/// The answer, once `buf` holds all of it: the head, and the body as long as Content-Length says
/// (or up to the close).
fn parse(buf: &[u8], closed: bool) -> Option<Result<Answer, String>> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let Some(status) = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
    else {
        return Some(Err(format!("not an HTTP status line: {status_line:?}")));
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = &buf[end + 4..];
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    match length {
        Some(len) if body.len() >= len => {}
        _ if closed => {}
        _ => return None,
    }
    let body = length.map_or(body, |len| &body[..len.min(body.len())]);
    Some(Ok(Answer {
        status,
        headers,
        body: body.to_vec(),
    }))
}

/// What every answer must be besides its status and code: problem+json whose `status` is the
/// HTTP status, a detail that says something (a 413's, the limit) and names no server path,
/// `nosniff`, and the expected header.
fn shape_faults(answer: &Answer, expect_header: Option<(&str, &str)>) -> Vec<String> {
    let mut faults = Vec::new();
    if answer.header("content-type") != Some("application/problem+json") {
        faults.push(format!(
            "content-type {:?}, not application/problem+json",
            answer.header("content-type")
        ));
    }
    if answer.header("x-content-type-options") != Some("nosniff") {
        faults.push("no `x-content-type-options: nosniff`".into());
    }
    match serde_json::from_slice::<Value>(&answer.body) {
        Err(e) => faults.push(format!("the body is not JSON ({e})")),
        Ok(problem) => {
            if problem["status"].as_u64() != Some(u64::from(answer.status)) {
                faults.push(format!(
                    "problem status {} differs from the HTTP status",
                    problem["status"]
                ));
            }
            let detail = problem["detail"].as_str().unwrap_or("");
            if detail.trim().is_empty() {
                faults.push("an empty detail".into());
            }
            // "Too large" says by how much: the limit broken, as a number.
            if answer.status == 413 && !detail.chars().any(|c| c.is_ascii_digit()) {
                faults.push(format!("a 413 whose detail names no limit: {detail}"));
            }
            for leak in ["/tmp", "/work", "scratch"] {
                if detail.contains(leak) {
                    faults.push(format!("the detail leaks `{leak}`: {detail}"));
                }
            }
        }
    }
    if let Some((name, wanted)) = expect_header {
        match answer.header(name) {
            Some(v) if v.contains(wanted) => {}
            other => faults.push(format!(
                "header {name} is {other:?}, should contain {wanted:?}"
            )),
        }
    }
    faults
}

/// What one case must get, from a [`cases::Case`] or a [`Stateful`] case.
#[derive(Debug, Clone, Copy)]
struct Expected<'a> {
    name: &'a str,
    why: &'a str,
    status: u16,
    code: &'a str,
    header: Option<(&'a str, &'a str)>,
}

impl<'a> From<&'a cases::Case> for Expected<'a> {
    fn from(c: &'a cases::Case) -> Self {
        Self {
            name: c.name,
            why: c.why,
            status: c.status,
            code: c.code,
            header: c.expect_header,
        }
    }
}

impl<'a> From<&'a Stateful> for Expected<'a> {
    fn from(c: &'a Stateful) -> Self {
        Self {
            name: c.name,
            why: c.why,
            status: c.status,
            code: c.code,
            header: c.expect_header,
        }
    }
}

/// The verdict on one case: `None` when it is as it should be, or, for a case in
/// [`KNOWN_WRONG`], still wrong as recorded (its fix, or any other change, is reported).
fn judge(want: Expected<'_>, answer: Result<Answer, String>) -> Option<String> {
    let Expected {
        name,
        why,
        status,
        code,
        header,
    } = want;
    let expected = format!("expected {status} {code}");
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return Some(format!("{name}: {expected}, got no answer: {e} ({why})")),
    };
    let got = (answer.status, answer.code());
    let right = got == (status, code.to_owned());
    let mut faults = shape_faults(&answer, header);
    match KNOWN_WRONG.iter().find(|k| k.name == name) {
        None if !right => faults.insert(0, format!("wrong status or code; the case: {why}")),
        None => {}
        Some(k) if right && faults.is_empty() => {
            return Some(format!(
                "{name}: now answers {status} {code} as it should: remove it from KNOWN_WRONG \
                 (it said: {})",
                k.why
            ));
        }
        Some(k) if got != (k.status, k.code.to_owned()) => faults.insert(
            0,
            format!(
                "recorded in KNOWN_WRONG as answering {} {} ({}), but the answer changed",
                k.status,
                shown(k.code),
                k.why
            ),
        ),
        // As recorded. A wrong answer that is not a problem at all cannot have its shape.
        Some(k) if k.code.is_empty() => faults.clear(),
        Some(_) => {}
    }
    (!faults.is_empty()).then(|| {
        format!(
            "{name}: {expected}, got {} [{}]",
            answer.summary(),
            faults.join("; ")
        )
    })
}

/// Sends one case and judges its answer (printed too when `print`).
async fn check(
    api: &TestApi,
    want: Expected<'_>,
    request: &Request,
    print: bool,
) -> Option<String> {
    let answer = send(api, request).await;
    if print {
        match &answer {
            Ok(a) => eprintln!("{}: {}", want.name, a.summary()),
            Err(e) => eprintln!("{}: {e}", want.name),
        }
    }
    judge(want, answer)
}

/// Everything under `dir`, files and directories, relative and sorted.
fn entries_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap_or(&p).display().to_string());
            if p.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The request of a [`STATEFUL`] case, against `api` where `stored` holds
/// [`cases::STORED_FILE`].
async fn stateful_request(api: &TestApi, case: &Stateful, stored: &str) -> Request {
    // The key `support::local_ports` signs with: the only way to sign what the store itself
    // refuses to (an expired link, a key with `..`).
    let signer = UrlSigner::new(vec![7; 32], &api.base);
    let path_of = |url: &str| url.strip_prefix(&api.base).unwrap_or(url).to_owned();
    let signed = |key: &str, expires| path_of(&signer.url(key, expires));
    let later = Utc::now() + chrono::Duration::minutes(10);
    let fresh = api
        .blobs
        .url(stored, Duration::from_secs(600))
        .await
        .expect("url");
    let fresh = path_of(&fresh.url);
    let path = match case.name {
        "download-expired-link" => signed(stored, Utc::now() - chrono::Duration::minutes(1)),
        "download-range-past-end" => {
            return Request::new("GET", fresh).header("range", "bytes=1000-");
        }
        "download-range-starts-at-end" => {
            return Request::new("GET", fresh).header("range", "bytes=10-");
        }
        "download-range-suffix-zero" => {
            return Request::new("GET", fresh).header("range", "bytes=-0");
        }
        "download-tampered-key" => fresh.replace("video.mp4", "poster.jpg"),
        "download-tampered-expiry" => {
            let (path, query) = fresh.split_once("?expires=").expect("expires");
            let (expires, rest) = query.split_once('&').expect("signature");
            let later = expires.parse::<i64>().expect("a number") + 3600;
            format!("{path}?expires={later}&{rest}")
        }
        "download-signed-dotdot-key" => signed("../url-signing.key", later),
        "download-signed-encoded-dotdot-key" => {
            signed("../url-signing.key", later).replacen("/files/../", "/files/%2e%2e/", 1)
        }
        "download-signed-missing-file" => signed(
            &minimoto_common::layout::video(JobId::new(), minimoto_common::spec::Format::Mp4),
            later,
        ),
        "download-signed-directory" => signed(stored.rsplit_once('/').expect("a folder").0, later),
        other => panic!("no request for the stateful case {other}"),
    };
    Request::new("GET", path)
}

/// The whole corpus against one API, every failure reported at once.
#[tokio::test]
async fn the_corpus_gets_the_answers_a_careful_api_gives() {
    let api = TestApi::start_tuned(
        cases::limits(),
        |c| c.upload_stall = Duration::from_secs(cases::STALL_SECONDS),
        |p| p,
    )
    .await;
    // A known-wrong case that is accepted today makes a job: it runs on a server of its own, so
    // that this one must still keep nothing.
    let quarantine = TestApi::start_tuned(
        cases::limits(),
        |c| c.upload_stall = Duration::from_secs(cases::STALL_SECONDS),
        |p| p,
    )
    .await;
    let accepted_today = |name: &str| KNOWN_WRONG.iter().any(|k| k.name == name && k.status < 400);
    // `CORPUS_PRINT=1 … -- --nocapture` prints every answer, to review them.
    let print = std::env::var_os("CORPUS_PRINT").is_some();
    let mut failures = Vec::new();
    let corpus = cases::cases();
    for case in &corpus {
        let server = if accepted_today(case.name) {
            &quarantine
        } else {
            &api
        };
        failures.extend(check(server, case.into(), &case.request, print).await);
    }

    // The download cases that need this server's state: one stored file, links signed for it.
    let stored = minimoto_common::layout::video(JobId::new(), minimoto_common::spec::Format::Mp4);
    let src = api.data().join("corpus-download-src");
    std::fs::write(&src, cases::STORED_FILE).expect("write");
    api.blobs
        .put_file(&stored, &src, "video/mp4")
        .await
        .expect("store the download file");
    std::fs::remove_file(&src).expect("remove the source");
    for case in STATEFUL {
        let request = stateful_request(&api, case, &stored).await;
        failures.extend(check(&api, case.into(), &request, print).await);
    }

    // Nothing kept: no staged upload, no blob but the stored one, no message, no job.
    let data = api.data();
    let staged = entries_under(&data.join("scratch"));
    if !staged.is_empty() {
        failures.push(format!("uploads left staged under scratch/: {staged:?}"));
    }
    let blobs: Vec<String> = entries_under(&data.join("blobs"))
        .into_iter()
        .filter(|e| data.join("blobs").join(e).is_file())
        .collect();
    if blobs != [stored.clone()] {
        failures.push(format!("blobs besides {stored}: {blobs:?}"));
    }
    let depth = api.queue.depth().await.expect("queue depth");
    if (depth.visible, depth.in_flight, depth.dead) != (0, 0, 0) {
        failures.push(format!("messages left in the queue: {depth:?}"));
    }
    let db = rusqlite::Connection::open(data.join("minimoto.db")).expect("open db");
    let jobs: i64 = db
        .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
        .expect("count jobs");
    if jobs != 0 {
        failures.push(format!("{jobs} job records made"));
    }

    let total = corpus.len() + STATEFUL.len();
    assert!(
        failures.is_empty(),
        "{} failures over {total} cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The table is big enough, its names usable as file names, and its expectations consistent.
#[test]
fn the_corpus_has_at_least_60_distinct_kinds() {
    let corpus = cases::cases();
    let expected: Vec<(&str, u16, &str)> = corpus
        .iter()
        .map(|c| (c.name, c.status, c.code))
        .chain(STATEFUL.iter().map(|c| (c.name, c.status, c.code)))
        .collect();
    let distinct: HashSet<&str> = expected.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(distinct.len(), expected.len(), "case names must be unique");
    assert!(distinct.len() >= 60, "only {} kinds", distinct.len());
    for &(name, status, code) in &expected {
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{name:?} must be kebab-case (it is a file name too)"
        );
        // Every expected code exists, with the status the API's one mapping gives it (unless the
        // case is known wrong, perhaps because of that mapping).
        let known = minimoto_common::ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == code)
            .unwrap_or_else(|| panic!("{name}: no error code {code}"));
        if KNOWN_WRONG.iter().all(|k| k.name != name) {
            assert_eq!(
                minimoto_api::error::status_of(known).as_u16(),
                status,
                "{name}: {code} is not answered with {status}"
            );
        }
    }
    for known in KNOWN_WRONG {
        let &(_, status, code) = expected
            .iter()
            .find(|(name, _, _)| *name == known.name)
            .unwrap_or_else(|| panic!("KNOWN_WRONG names no case {}", known.name));
        assert!(
            (status, code) != (known.status, known.code),
            "{}: the recorded wrong answer is the expected one",
            known.name
        );
    }
}
