//! The API's tests, one binary: the HTTP contract in-process (`http`, `ingest`, a job's life
//! after submit in `lifecycle`, retries in `idempotency`, keys and tenants in `tenants`, and
//! hostile clients in `hostile`), the `minimoto-api` binary itself (`binary`), and the OpenAPI
//! document (`openapi`).

mod binary;
mod corpus;
mod hostile;
mod http;
mod idempotency;
mod ingest;
mod lifecycle;
mod openapi;
#[path = "../../../tests/support/photos.rs"]
mod photos;
mod support;
mod tenants;
