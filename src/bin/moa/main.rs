//! `moa`: everything but compiling (plan tools now; generation and profiling later).

mod args;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Before any thread starts (see the function): no Mesa XDG warnings outside the scripts.
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    let args = args::Args::parse();
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
