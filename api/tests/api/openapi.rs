//! The checked-in OpenAPI document must match the code. To refresh it after changing the API:
//! `UPDATE_OPENAPI=1 cargo test -p minimoto-api --test api openapi`.

use std::path::PathBuf;

#[test]
fn openapi_json_is_fresh() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let generated = minimoto_api::openapi().to_pretty_json().expect("serialize") + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write openapi.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p minimoto-api --test api openapi` and commit it"
    );
}

#[test]
fn every_route_is_documented_with_its_errors() {
    let doc = minimoto_api::openapi();
    let paths: Vec<&String> = doc.paths.paths.keys().collect();
    for p in [
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/video",
        "/v1/jobs/{id}/poster",
        "/v1/jobs/{id}/preview",
        "/v1/jobs/{id}/thumbnails/{size}",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            paths.iter().any(|k| k.as_str() == p),
            "{p} missing from {paths:?}"
        );
    }
    let json = serde_json::to_value(&doc).expect("json");
    let post = &json["paths"]["/v1/jobs"]["post"];
    for status in ["202", "400", "413", "415", "422"] {
        assert!(
            post["responses"][status].is_object(),
            "POST /v1/jobs documents {status}"
        );
    }
    assert!(post["requestBody"]["content"]["multipart/form-data"].is_object());
    for (path, method) in [
        ("/v1/jobs", "get"),
        ("/v1/jobs/{id}", "delete"),
        ("/v1/jobs/{id}/video", "get"),
    ] {
        let op = &json["paths"][path][method];
        assert_eq!(
            op["security"][0]["bearer"],
            serde_json::json!([]),
            "{path} takes the key"
        );
        for status in ["401", "403", "429"] {
            assert!(
                op["responses"][status].is_object(),
                "{method} {path} documents {status}"
            );
        }
    }
    assert!(
        json["paths"]["/healthz"]["get"]["security"].is_null(),
        "health needs no key"
    );
    assert_eq!(
        json["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}
