//! `scaler simulate` without the rest of the scaler, for experiments:
//!
//! ```sh
//! cargo run --release -p minimoto-scaler --example simulate -- --seeds 10 --plot-dir docs/scaling
//! ```

use clap::Parser;
use minimoto_scaler::simulate::{SimulateArgs, run};

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: SimulateArgs,
}

fn main() -> anyhow::Result<()> {
    run(Cli::parse().args)
}
