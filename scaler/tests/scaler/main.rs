//! The scaler's integration tests, one binary: the control loop's drain handshake (`control`), the EC2 fleet and the EC2 side of setup/cleanup
//! against moto (`ec2`, feature `aws`).

mod binary;
mod control;
#[cfg(feature = "aws")]
mod ec2;

// The moto support module of common/aws's tests names its credentials type through
// `aws_sdk_s3`; every AWS SDK re-exports the same type, so the EC2 SDK (a dependency of this
// package already) stands in for it rather than compiling the S3 SDK for this binary alone.
#[cfg(feature = "aws")]
extern crate aws_sdk_ec2 as aws_sdk_s3;
#[cfg(feature = "aws")]
#[path = "../../../common/aws/tests/support/mod.rs"]
mod support;
