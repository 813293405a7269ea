//! `moa eval --merge OLD.json` (how a stopped or extended evaluation is resumed) on the
//! tiny random Llama through wgpu (lavapipe in CI): a plan edited under the same file name
//! is scored again instead of keeping the old plan's numbers, and a report of another model
//! or perplexity setup is refused naming what differs. Before, only the grid was checked,
//! so all three were merged as this run's results. About 10 s.

mod common;

use std::path::Path;
use std::process::Command;

use candle_core::quantized::gguf_file::Value;
use common::tiny::{self, tiny};
use moa::eval::retrieval::EvalReport;

const PLAN: &str = "format_version = 1

[model]
name = \"tiny\"
layers = 2
q_heads = 4
kv_heads = 2
head_dim = 16
max_context_tokens = 2048

[span]
sink_tokens = 4
min_span_tokens = 16
block_tokens = 16
mode = \"moa\"
max_new_tokens = 16

[[layers]]
alpha = [8, 0, 16, 0]
beta = [0.0, 0.5, 0.0, 0.25]

[[layers]]
alpha = [0, 0, 0, 0]
beta = [1.0, 1.0, 0.5, 0.5]
";

fn eval(model: &Path, plan: &Path, extra: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_moa"))
        .args(["eval", "--model", model.to_str().unwrap(), "--plan"])
        .arg(plan)
        .args(["--lengths", "256", "--depths", "2", "--tasks", "passkey"])
        .args([
            "--ppl-length",
            "128",
            "--ppl-scored",
            "8",
            "--no-uniform",
            "--quiet",
        ])
        .args(extra)
        .output()
        .expect("running moa");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn report(path: &Path) -> EvalReport {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn merge_rescores_an_edited_plan_and_refuses_another_model_or_setup() {
    let dir = tiny::tmp("eval-merge");
    let model = dir.join("tiny.gguf");
    tiny(5, true).write_gguf(&model, |md, _| {
        for (k, v) in md.iter_mut() {
            if k == "llama.context_length" {
                *v = Value::U32(2048);
            }
        }
    });
    let plan = dir.join("p.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let first = dir.join("first.json");
    let (ok, err) = eval(
        &model,
        &plan,
        &["--ppl-rows", "1", "--json", first.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let old = report(&first);

    // The plan re-optimized under the same name: scored again, dense taken as it was.
    std::fs::write(
        &plan,
        PLAN.replace("alpha = [8, 0, 16, 0]", "alpha = [0, 0, 0, 0]")
            .replace(
                "beta = [0.0, 0.5, 0.0, 0.25]",
                "beta = [0.125, 0.125, 0.125, 0.125]",
            ),
    )
    .unwrap();
    let second = dir.join("second.json");
    let merge = ["--merge", first.to_str().unwrap()];
    let (ok, err) = eval(
        &model,
        &plan,
        &[
            &["--ppl-rows", "1", "--json", second.to_str().unwrap()][..],
            &merge,
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("`p` in") && err.contains("scored again"),
        "{err}"
    );
    let new = report(&second);
    assert_eq!(new.plans[0], old.plans[0], "dense is merged as it was");
    assert_ne!(new.plans[1].kv_density, old.plans[1].kv_density);
    assert_ne!(new.plans[1].masking, old.plans[1].masking);

    // Another perplexity setup, another model: refused, naming what differs.
    let (ok, err) = eval(&model, &plan, &[&["--ppl-rows", "2"][..], &merge].concat());
    assert!(!ok);
    assert!(
        err.contains("measured perplexity with --ppl-rows 1, --ppl-length 128, --ppl-scored 8")
            && err.contains("this run: --ppl-rows 2,"),
        "{err}"
    );
    let other = dir.join("other.gguf");
    std::fs::copy(&model, &other).unwrap();
    let (ok, err) = eval(&other, &plan, &[&["--ppl-rows", "1"][..], &merge].concat());
    assert!(!ok);
    assert!(
        err.contains("the model `") && err.contains("other.gguf") && err.contains("one model's"),
        "{err}"
    );
}
