//! `setup`, `cleanup` and the IAM policies, one binary: the bucket's configuration (`bucket`), a
//! whole stack (`stack`) against moto, and the policies against the code (`iam`).

mod bucket;
mod iam;
mod stack;
#[path = "../../../aws/tests/support/mod.rs"]
mod support;
