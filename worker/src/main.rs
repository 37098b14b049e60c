//! `minimoto-worker`: render workers that consume the job queue. See `--help`.

use clap::Parser;

/// Photos in, video out: a minimoto render worker.
#[derive(Debug, Parser)]
#[command(name = "minimoto-worker", version)]
struct Cli {
    #[command(flatten)]
    worker: minimoto_worker::cli::WorkerArgs,
    #[command(flatten)]
    common: minimoto_runtime::CommonArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    minimoto_runtime::main(minimoto_worker::cli::run(cli.worker, cli.common))
}
