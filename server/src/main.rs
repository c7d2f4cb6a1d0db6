//! The `dealflow` binary: parse the command line, then run it.

use clap::Parser;

fn main() -> std::process::ExitCode {
    dealflow::config::Cli::parse().run()
}
