//! The `gatehouse` binary: parse arguments and hand over to the library.

fn main() -> anyhow::Result<()> {
    gatehouse::cli::main_from(std::env::args_os().collect())
}
