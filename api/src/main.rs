//! `minimoto-api`: the HTTP API alone (render workers run as `minimoto-worker`). See `--help`.

use clap::Parser;

/// Photos in, video out: the minimoto HTTP API.
#[derive(Debug, Parser)]
#[command(name = "minimoto-api", version)]
struct Cli {
    #[command(flatten)]
    api: minimoto_api::cli::ApiArgs,
    #[command(flatten)]
    common: minimoto_runtime::CommonArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    minimoto_runtime::main(minimoto_api::cli::run(cli.api, cli.common))
}
