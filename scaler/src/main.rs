//! `minimoto-scaler`: the fleet's control loop, its status, and the policy simulator. See `--help`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = minimoto_scaler::cli::Cli::parse();
    minimoto_runtime::main(cli.run())
}
