pub mod bench;
mod calib;
pub mod diagnose;
pub mod eval;
mod generate;
mod model;
mod optimize;
mod pipeline;
mod plan;
mod profile;
mod validate;

use std::process::ExitCode;

use crate::args::{Args, Command};

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Plan(cmd) => plan::run(cmd),
        Command::Model(cmd) => model::run(cmd),
        Command::Generate(args) => generate::run(args),
        Command::Optimize(args) => optimize::run(args),
        Command::Calib(args) => calib::run(args),
        Command::Profile(args) => profile::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Pipeline(args) => pipeline::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Diagnose(args) => diagnose::run(args),
        Command::Bench(args) => bench::run(args),
    }
}

/// Writes `text` to `path`, or to standard output when no path is given.
pub fn write_output(path: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    match path {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("cannot write `{}`", p.display()))
        }
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            Ok(())
        }
    }
}
