//! The `gatehouse` binary: parse arguments and hand over to the library.

/// mimalloc rather than glibc's allocator: glibc keeps freed memory in per-thread arenas,
/// and the 19 MiB argon2 buffers of a burst of logins stayed resident (hundreds of MB
/// after a token benchmark); mimalloc returns large blocks to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    gatehouse::cli::exit_code(gatehouse::cli::main_from(std::env::args_os().collect()))
}
