//! The API's tests, one binary: the HTTP contract in-process (`http`, `ingest`, a job's life
//! after submit in `lifecycle`, retries in `idempotency`, keys and tenants in `tenants`, and
//! hostile clients in `hostile`), the `minimoto-api` binary itself (`binary`), the OpenAPI
//! document (`openapi`) and its pages in a browser (`docs`), webhooks (`webhooks`), the events
//! queue (`events`) and retention (`retention`).

mod binary;
#[path = "../../../tests/support/clock.rs"]
mod clock;
mod corpus;
mod docs;
mod events;
mod hostile;
mod http;
mod idempotency;
mod ingest;
mod lifecycle;
mod openapi;
#[path = "../../../tests/support/photos.rs"]
mod photos;
mod retention;
mod support;
mod tenants;
mod webhooks;
