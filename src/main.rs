//! `minimoto`: photos in, video out. See `minimoto --help`.

use clap::Parser;

mod admin;
mod cli;
mod client;
mod events;
mod keys;
mod serve;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    minimoto_runtime::main(cli.run())
}
