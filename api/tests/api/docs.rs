//! `GET /docs`: the interactive documentation, served from files embedded in the binary. The page
//! is rendered by a real browser (headless Chromium) on a machine with no internet, and its
//! content security policy forbids anything not served by the API itself.

use std::{path::PathBuf, process::Stdio, time::Duration};

use minimoto_common::limits::Limits;

use crate::support::TestApi;

/// The browser: `MINIMOTO_CHROMIUM`, else Debian's `chromium` (`scripts/ensure-deps --test`
/// installs it). Missing, the test fails and says so: it never passes without a browser.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("MINIMOTO_CHROMIUM") {
        return path.into();
    }
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        let path = PathBuf::from(candidate);
        if path.exists() {
            return path;
        }
    }
    panic!(
        "no Chromium to render /docs with: run `scripts/ensure-deps --test` (installs Debian's \
         chromium) or set MINIMOTO_CHROMIUM to a Chromium binary"
    );
}

/// The page as the browser left it after running its scripts (`--dump-dom`).
async fn rendered(url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut browser = tokio::process::Command::new(chromium());
    browser
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Waits for the page's scripts, its fetch of the document and the render (virtual
            // time: done as soon as nothing is pending).
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), browser.output())
        .await
        .expect("Chromium did not finish within 120 s")
        .expect("Chromium could not be started");
    assert!(
        out.status.success(),
        "Chromium failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the DOM is UTF-8")
}

#[tokio::test]
async fn the_docs_page_renders_every_operation_in_a_browser_with_no_internet() {
    let api = TestApi::start(Limits::default()).await;
    let dom = rendered(&api.url("/docs")).await;
    assert!(
        dom.contains("class=\"title\"") && dom.contains("minimoto"),
        "the page did not render the document's title: {}",
        &dom[..dom.len().min(2000)]
    );
    let doc = minimoto_api::openapi();
    let mut operations = 0;
    for path in doc.paths.paths.keys() {
        assert!(
            dom.contains(&format!("data-path=\"{path}\"")),
            "{path} is not on the rendered page"
        );
        operations += 1;
    }
    assert!(operations >= 10, "only {operations} paths in the document");
    // The bearer scheme gives the page its Authorize button, for trying the /v1 routes.
    assert!(dom.contains("authorize"), "no Authorize button");
}

#[tokio::test]
async fn the_docs_files_come_from_the_binary_under_a_same_origin_policy() {
    let api = TestApi::start(Limits::default()).await;
    let http = reqwest::Client::new();
    let page = http.get(api.url("/docs")).send().await.expect("page");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(policy.starts_with("default-src 'self'"), "{policy}");
    let html = page.text().await.expect("html");
    let linked: Vec<&str> = html
        .split("\"docs/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(linked.len() >= 4, "{html}");
    for file in linked {
        let res = http
            .get(api.url(&format!("/docs/{file}")))
            .send()
            .await
            .expect("file");
        assert_eq!(res.status(), 200, "{file}");
        assert!(
            res.bytes().await.expect("body").len() > 100,
            "{file} is empty"
        );
    }
    let config = http
        .get(api.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .expect("initializer")
        .text()
        .await
        .expect("js");
    assert!(config.contains("\"openapi.json\""), "{config}");
    assert!(!config.contains("petstore"), "{config}");
    for missing in ["/docs/nope.js", "/docs/index.html"] {
        let res = http.get(api.url(missing)).send().await.expect("missing");
        assert_eq!(res.status(), 404, "{missing}");
        assert_eq!(
            res.headers()["content-type"],
            minimoto_common::problem::CONTENT_TYPE
        );
    }
}
