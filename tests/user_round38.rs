//! A new user's journey, round 38: a user who measures, on a CPU-only machine (no CUDA
//! driver, no PyTorch). Tried: `moa bench` with every flag of its `--help` (the checks
//! that come before the GPU: bad and zero values, `--checks-only` alone, `--wgpu` without
//! `--parity`, `--no-dense` without a plan, `--kv-heads` with `--model`, repeated
//! `--batch`/`--prompt`/`--plan`, `--json` on a folder, a missing folder, a plan or a file
//! of the model folder, `--prompt`/`--new`/`--parity` past the context of `--like` and of
//! a tiny `--model`), `cargo bench --no-run` and the two CPU benchmarks (`compile`,
//! `optimize`) against benches/RESULTS.md's tables, and the PyTorch peers in
//! benches/peers/ with `--help`, no arguments and bad values under python3 without torch.
//! `moa bench`'s errors named their flag and range, and nothing panicked or hung. What it
//! found wrong, each pinned here: every peer script (`decode_peers.py`, `hf_decode.py`,
//! `hf_prefill.py`, `prefill_peers.py`, `rope_llama3.py`) imported torch first, so on a
//! machine without it even `--help` was a ModuleNotFoundError traceback, and bad values
//! (`--reps 0`, `--new 0`, `--flex-every 0`, `--batch x`, a missing input file, an output
//! in a missing folder) were tracebacks on the GPU machine after the model was built, or
//! not found at all: each now answers `--help` and refuses a bad value naming the flag
//! and the allowed range (argparse's usage error, exit 2) before importing torch, and a
//! missing torch is one line (exit 2); `moa bench --prompt P` and `--parity N` near
//! usize::MAX printed saturated sums (`18446744073709551615 + --new 32 =
//! 18446744073709551615 tokens`): the sums are exact now. `benches/optimize.rs` printed
//! the raw instance's bound and gap as `Some(197.44255932743948)` and let a later plan's
//! gap hide a plan with none in "worst gap" (a benchmark's print, not pinned). Seconds
//! each; nothing here needs a GPU, PyTorch or anything outside the repository (the peer
//! test is skipped where there is no python3).

mod common;

common::cli::tagged!();

/// `moa bench`'s length checks summed in a saturating usize, so a --prompt or --parity
/// near usize::MAX printed a sum equal to one of its terms; the sums are exact now.
#[test]
fn bench_length_sums_add_up() {
    let huge = usize::MAX.to_string();
    let err = refused(
        "moa",
        &["bench", "--prompt", &huge],
        &[&format!(
            "--prompt {huge} + --new 32 = {} tokens is past the context of --like smollm2-135m: 8192 tokens",
            usize::MAX as u128 + 32
        )],
    );
    assert!(!err.contains("CUDA"), "{err}");
    refused(
        "moa",
        &["bench", "--checks-only", "--parity", &huge],
        &[&format!(
            "--parity {huge}: its longest prompt (400 tokens) + {huge} = {} tokens is past the model's context of 8192 tokens; allowed --parity 1..=7792",
            usize::MAX as u128 + 400
        )],
    );
}
