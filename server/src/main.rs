//! The `dealflow` binary: parse the command line, then run it.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: dealflow::MiMalloc = dealflow::MiMalloc;

fn main() -> std::process::ExitCode {
    dealflow::cli::Cli::parse().run()
}
