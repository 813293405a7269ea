//! `moa plan show --max-batch`: the CUDA engine's memory planner (`runtime::memory`) on the
//! command line, with no GPU. The figures are checked against hand-computed bytes and the
//! batches the engine chose on the H200 (benches/RESULTS.md, "Largest batches at 4k").

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

const VICUNA: &str = "tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json";

/// Runs `moa plan show PLAN ARGS`; returns (exit code, stdout, stderr).
fn show(plan: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_moa"))
        .current_dir(root())
        .args(["plan", "show", plan])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The row of `label` in the table: (bytes/row, largest batch).
fn row(out: &str, label: &str) -> (u64, usize) {
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label))
        .unwrap_or_else(|| panic!("no row `{label}` in\n{out}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[1].parse().unwrap(), f[4].parse().unwrap())
}

#[test]
fn vicuna_plan_at_4k_reproduces_the_engines_batches_on_the_h200() {
    // On the H200 `moa bench --batch max` chose 60 rows dense and 120 with this plan at
    // prompt 4096 + 12 new (RESULTS.md). The engine saw the free memory after the CUDA
    // context (139.8 GiB less ≈ 0.8 GiB) less its 4 GiB reserve: ≈ 135 GiB.
    let (code, out, err) = show(
        VICUNA,
        &[
            "--max-batch",
            "--like",
            "llama-2-7b",
            "--prompt",
            "4096",
            "--new",
            "12",
            "--memory",
            "135",
        ],
    );
    assert_eq!(code, 0, "{err}");
    // Dense by hand, bf16, N = 4108: KV 32 layers × 32 KV heads × 4108 slots × 2 × 128 × 2 B
    // = 2 153 775 104; activations a row: one decode token (4096·6 + 12288·6 + 4096·2 +
    // 11008·10 + 20 = 216 596) + logits and last state (32000·4 + 4096·2 + 64 = 136 256).
    assert_eq!(
        row(&out, "dense"),
        (2_153_775_104 + 216_596 + 136_256, 60),
        "{out}"
    );
    let (plan_bytes, plan_rows) = row(&out, "lmsys--vicuna-7b-v1.5-16k");
    assert_eq!(plan_rows, 120, "{out}");
    assert!(plan_bytes < 2_154_127_956 / 2 + 1_000_000, "{out}");
    assert!(
        out.contains("largest batch: 120 rows with the plan, 60 dense = 2.00x dense"),
        "{out}"
    );
    // Weights: 13 477 363 712 bytes = 12.55 GiB (the 13.48 GB of RESULTS.md).
    assert!(out.contains("weights 12.55 GiB"), "{out}");
}

#[test]
fn smollm2_plan_halves_the_kv_bytes_of_a_row() {
    let (code, out, err) = show(
        "plans/smollm2-135m-moa-50.toml",
        &[
            "--max-batch",
            "--like",
            "smollm2-135m",
            "--prompt",
            "4096",
            "--memory",
            "20GiB",
        ],
    );
    assert_eq!(code, 0, "{err}");
    // N = 4096 + the plan's max_new_tokens 1024.
    assert!(out.contains("N = prompt 4096 + new 1024 = 5120"), "{out}");
    // Dense KV a row: 30 layers × 3 KV heads × 5120 × 2 × 64 × 2 B = 117 964 800.
    let (dense_bytes, dense_rows) = row(&out, "dense");
    let (plan_bytes, plan_rows) = row(&out, "smollm2-135m-moa-50");
    let act = 576 * 6 + 15 * 64 * 6 + 576 * 2 + 1536 * 10 + 20 + 49152 * 4 + 576 * 2 + 64;
    assert_eq!(dense_bytes, 117_964_800 + act, "{out}");
    assert!(plan_bytes < dense_bytes * 6 / 10, "{out}");
    assert!(plan_rows > dense_rows * 19 / 10, "{out}");
}

#[test]
fn bad_budgets_lengths_and_shapes_name_the_flag_and_the_range() {
    let base = ["--max-batch", "--new", "12"];
    let refused = |extra: &[&str], want: &[&str]| {
        let mut args: Vec<&str> = base.iter().chain(extra).copied().collect();
        if !extra.contains(&"--prompt") {
            args.extend(["--prompt", "4096"]);
        }
        let (code, out, err) = show(VICUNA, &args);
        assert_ne!(code, 0, "{args:?} was accepted:\n{out}");
        assert!(!err.contains("panicked"), "{err}");
        for w in want {
            assert!(err.contains(w), "{args:?}: `{w}` missing from\n{err}");
        }
    };
    // Less memory than the weights (12.55 GiB in bf16). The least budget counts the `v`
    // prefill's f16 copy of V for a pass of 8192 tokens (0.06 GiB).
    refused(
        &["--like", "llama-2-7b", "--memory", "10"],
        &[
            "--memory 10.00 GiB is less than the weights",
            "12.55 GiB",
            "allowed at least 15.27 GiB",
        ],
    );
    // The weights fit but no row does.
    refused(
        &["--like", "llama-2-7b", "--memory", "14"],
        &[
            "--memory 14.00 GiB holds no row",
            "allowed at least 15.27 GiB",
        ],
    );
    // Prompt + new past the 16k context of the Llama-2-7B shape (Vicuna-16k).
    refused(
        &[
            "--like",
            "llama-2-7b",
            "--memory",
            "135",
            "--prompt",
            "16380",
        ],
        &[
            "--prompt-len 16380 + --new 12 = 16392 tokens",
            "allowed --prompt-len 1..=16372",
        ],
    );
    refused(
        &["--like", "gpt-2", "--memory", "135"],
        &[
            "--like gpt-2",
            "allowed smollm2-135m, llama-2-7b, llama-3-8b",
        ],
    );
    refused(
        &["--memory", "135"],
        &["--max-batch needs the model's shape: --like"],
    );
    refused(
        &["--like", "llama-2-7b", "--memory", "135TB"],
        &["--memory `135TB` is not a size", "GiB, GB, MiB, MB"],
    );
    refused(
        &["--like", "llama-2-7b", "--memory", "0"],
        &["--memory `0` is out of range"],
    );
    refused(
        &["--like", "llama-2-7b", "--memory", "135", "--dtype", "f8"],
        &["--dtype `f8`: allowed bf16, f16, f32"],
    );
    // A plan of another shape.
    let (code, _, err) = show(
        "plans/smollm2-135m-moa-50.toml",
        &[
            "--max-batch",
            "--like",
            "llama-2-7b",
            "--prompt",
            "100",
            "--memory",
            "135",
        ],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("smollm2-135m-moa-50.toml") && !err.contains("panicked"),
        "{err}"
    );
}
