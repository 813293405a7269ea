//! `moa`: everything but compiling (plan tools now; generation and profiling later).

mod args;
mod commands;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    // A reader that closes the pipe (`moa generate ... | head`) ends moa quietly, as it
    // ends other Unix tools: Rust ignores SIGPIPE, so a later `println!` panicked ("failed
    // printing to stdout: Broken pipe", exit 101) and a checked write failed the command.
    #[cfg(unix)]
    // SAFETY: called first in main, before any thread starts; restores the default action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Before any thread starts (see the function): no Mesa XDG warnings outside the scripts.
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    let matches = cli().get_matches();
    let args = args::Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match commands::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("moa failed");
            for cause in err.chain() {
                eprintln!("  Cause: {cause}");
            }
            ExitCode::from(2)
        }
    }
}

/// The parser, with negative numbers taken as values in every subcommand: without it,
/// `--temperature -1` or `--max-new-tokens -3` answered "unexpected argument '-1' found",
/// naming no flag, where the value now reaches the flag's own check ("invalid value '-3'
/// for '--max-new-tokens'", "`temperature` = -1 is out of range: allowed ...").
fn cli() -> clap::Command {
    fn negative_numbers_are_values(c: clap::Command) -> clap::Command {
        c.allow_negative_numbers(true)
            .mut_subcommands(negative_numbers_are_values)
    }
    negative_numbers_are_values(args::Args::command())
}
