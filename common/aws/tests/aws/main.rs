//! The AWS adapters against a moto server through the real SDK clients, one binary.

mod dynamodb;
mod registry;
mod s3;
mod sqs;
#[path = "../support/mod.rs"]
mod support;
