//! The `gatehouse` binary: parse arguments and hand over to the library.

use clap::Parser as _;

fn main() -> anyhow::Result<()> {
    gatehouse::cli::run(gatehouse::cli::Cli::parse())
}
