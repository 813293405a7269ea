//! `moa`: everything but compiling (plan tools now; generation and profiling later).

/// `print!` to standard output that returns the write's error (with `?`) instead of
/// panicking: std's `print!` panicked on a full disk or a closed descriptor (round 36:
/// `moa model info M > /dev/full` ended in "failed printing to stdout" and a backtrace,
/// exit 101), and a script was told nothing went wrong where output went nowhere.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*), false)?
    };
}

/// `println!` that returns the write's error, as [`out!`].
macro_rules! outln {
    () => {
        $crate::write_stdout(format_args!(""), true)?
    };
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*), true)?
    };
}

mod args;
mod commands;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

/// Writes `args` (and a line end where `newline`) to standard output and flushes it, so a
/// write error (a full disk, `>&-`) is this call's, reported by the command as `moa
/// failed` with exit 2, not lost in the buffer at exit or a panic.
pub(crate) fn write_stdout(args: std::fmt::Arguments, newline: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush())
        .map_err(|e| anyhow::anyhow!("cannot write to standard output: {e}"))
}

/// Prints clap's `--help` or `--version` text (or its usage error) and exits as clap's
/// `Error::exit` does, except that a help or version text that cannot be written (`moa
/// --help > /dev/full`) exits 2 naming the error: clap ignored it and exited 0 (round 36).
fn clap_exit(e: clap::Error) -> ! {
    use std::io::Write as _;
    if e.use_stderr() {
        e.exit()
    }
    if let Err(why) = e.print().and_then(|()| std::io::stdout().flush()) {
        eprintln!("moa failed\n  Cause: cannot write to standard output: {why}");
        std::process::exit(2);
    }
    std::process::exit(0)
}

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
    let matches = cli().try_get_matches().unwrap_or_else(|e| {
        if e.kind() == clap::error::ErrorKind::InvalidUtf8 {
            if let Some(why) = non_utf8_argument(std::env::args_os().skip(1)) {
                eprintln!("moa failed\n  Cause: {why}");
                std::process::exit(2);
            }
        }
        clap_exit(e)
    });
    let mut args = args::Args::from_arg_matches(&matches).unwrap_or_else(|e| clap_exit(e));
    // The derive keeps each flag's values apart; the rows of `generate` follow the order
    // of --prompt and --prompt-file on the command line, which only the matches hold.
    if let (args::Command::Generate(g), Some(("generate", m))) =
        (&mut args.command, matches.subcommand())
    {
        g.set_order(m);
    }
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

/// Which argument is not UTF-8, for a text flag's value clap refused with "invalid UTF-8
/// was detected in one or more arguments", naming none (round 21: `--prompt` given
/// Latin-1 bytes from a shell variable). Paths may be any bytes (clap takes them as
/// `OsString`), so only what clap refused reaches this.
fn non_utf8_argument(args: impl Iterator<Item = std::ffi::OsString>) -> Option<String> {
    let args: Vec<std::ffi::OsString> = args.collect();
    let i = args.iter().position(|a| a.to_str().is_none())?;
    let shown = args[i].to_string_lossy();
    let flag = shown
        .split_once('=')
        .filter(|(f, _)| f.starts_with("--"))
        .map(|(f, _)| f.to_string())
        .or_else(|| {
            i.checked_sub(1)
                .and_then(|j| args[j].to_str())
                .filter(|p| p.starts_with('-'))
                .map(str::to_string)
        });
    let what = flag.map_or(String::new(), |f| format!(", the value of `{f}`,"));
    Some(format!(
        "argument {} (`{shown}`, U+FFFD where a byte is not UTF-8){what} is not UTF-8 text: \
         moa takes text arguments as UTF-8; convert it (`iconv -f LATIN1 -t UTF-8`, with the \
         text's own encoding)",
        i + 1
    ))
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
    let new_tokens = |c: clap::Command, range: &'static str| {
        c.mut_arg("max_new_tokens", |a| {
            a.value_parser(move |text: &str| new_token_count(text, range))
        })
    };
    negative_numbers_are_values(whole_number_errors(args::Args::command()))
        .mut_subcommand("generate", |c| new_tokens(c, GENERATE_NEW_TOKENS_RANGE))
        .mut_subcommand("calib", |c| new_tokens(c, DENSE_ANSWER_RANGE))
        .mut_subcommand("pipeline", |c| new_tokens(c, DENSE_ANSWER_RANGE))
}

/// `moa generate --max-new-tokens`'s range as its checks say it (the upper end needs the
/// model and the prompts, [`commands::generate`]).
pub const GENERATE_NEW_TOKENS_RANGE: &str =
    "1..=(the model's context minus the longest prompt's tokens); generation needs at least 1 new token";

/// `moa calib` / `moa pipeline --max-new-tokens`'s range as their checks say it.
pub const DENSE_ANSWER_RANGE: &str = "1 or more (the dense answer needs at least 1 token)";

/// `--max-new-tokens` of the commands that need at least one new token: `-1` said
/// "allowed 0..=18446744073709551615" ([`whole`]) and `0` then "allowed 1..=…" (round 37),
/// two ranges for one flag. A refusal here now gives the command's range, the one its own
/// check says for `0` and for a count past the context (which need the model: not here).
fn new_token_count(text: &str, range: &str) -> Result<usize, String> {
    match whole::<usize>(text) {
        Ok(n) => Ok(n),
        Err(e) => Err(format!(
            "{}: allowed {range}",
            e.split(": allowed").next().unwrap_or(&e)
        )),
    }
}

/// Every `usize` and `u64` flag parsed by [`whole`], in every subcommand: clap's own parser
/// for them (Rust's `FromStr`) said "invalid digit found in string" for `--max-new-tokens
/// -1` and "number too large to fit in target type" for `--depths 18446744073709551616`,
/// naming neither what is wrong nor the range (round 18). `u32` flags already said "-1 is
/// not in 0..=4294967295" (clap's ranged parser), and each command checks its own range
/// after this.
fn whole_number_errors(c: clap::Command) -> clap::Command {
    use std::any::TypeId;
    c.mut_args(|a| {
        let id = a.get_value_parser().type_id();
        if id == TypeId::of::<usize>() {
            a.value_parser(whole::<usize>)
        } else if id == TypeId::of::<u64>() {
            a.value_parser(whole::<u64>)
        } else {
            a
        }
    })
    .mut_subcommands(whole_number_errors)
}

/// `text` as a whole number of 0 or more, or why not with the allowed range (`clap` adds
/// "invalid value '-1' for '--flag <FLAG>': " before it).
fn whole<T>(text: &str) -> Result<T, String>
where
    T: std::str::FromStr<Err = std::num::ParseIntError> + std::fmt::Display + Bounded,
{
    use std::num::IntErrorKind;
    text.parse::<T>().map_err(|e| {
        let what = match e.kind() {
            IntErrorKind::Empty => "is empty",
            IntErrorKind::PosOverflow => "is too large",
            _ if text.starts_with('-') && text[1..].bytes().all(|b| b.is_ascii_digit()) => {
                "is negative"
            }
            _ => "is not a whole number",
        };
        format!("{what}: allowed 0..={} (a whole number)", T::MAX_VALUE)
    })
}

/// The largest value of a flag's integer type, for [`whole`]'s message.
trait Bounded {
    const MAX_VALUE: Self;
}
impl Bounded for usize {
    const MAX_VALUE: Self = usize::MAX;
}
impl Bounded for u64 {
    const MAX_VALUE: Self = u64::MAX;
}
