//! The worker's tests, one binary: the consume loop (`consume`) and the `minimoto-worker` binary
//! itself (`binary`). The render engine's own tests are in `worker/render`.

mod binary;
mod consume;
