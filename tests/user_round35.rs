//! A new user's journey, round 35: a K-quantized GGUF of one's own (llama.cpp's Q4_K_M mix:
//! Q6_K for the embedding, V and the FFN's down projection, Q4_K elsewhere, an untied
//! output) through the plan pipeline as README.md and docs/CALIBRATION.md give it:
//! `moa model info`, `moa pipeline` (calib → profile → optimize → validate),
//! `moa plan show`, `moa-compile`, `moa generate --plan --kernels` on lavapipe. Pinned here:
//! the whole path gives the quantized file what it gives the same model written as F32
//! (the calibration, the influence profiles, the plan's rules and the generated tokens);
//! a calibration longer than the model's context was taken by `moa profile`, `validate`
//! and `diagnose` with no word (positions past what the model was trained on) and is now
//! refused, naming the file, the sample, its length and the context; and `moa profile`
//! held the f32 weights twice while it copied them into the profiler (peak 947 MB for
//! 479 MB of f32 weights of a Q4_K_M file, past what the load's memory check allowed for),
//! now once (703 MB). Random Llamas of 2 (8 for the memory) layers whose rows are whole
//! 256-weight super-blocks; seconds each.

mod common;

use std::path::Path;
use std::process::Command;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use common::cli::s;
use common::tiny::{rand_tensor, tiny, VOCAB};
use rand::rngs::StdRng;
use rand::SeedableRng;

common::cli::tagged!();

/// A shape: hidden, ffn, query heads, KV heads, head_dim, layers, context.
#[derive(Clone, Copy)]
struct Shape {
    hidden: usize,
    ffn: usize,
    q_heads: usize,
    kv_heads: usize,
    head_dim: usize,
    layers: usize,
    context: usize,
}

const SMALL: Shape = Shape {
    hidden: 256,
    ffn: 512,
    q_heads: 4,
    kv_heads: 2,
    head_dim: 64,
    layers: 2,
    context: 1024,
};

fn moa() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_moa"));
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    c.env(
        "MOA_CACHE",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("user_round35-no-cache"),
    );
    c
}

/// The tiny model's tokenizer and template with `sh`'s shape.
fn metadata(sh: Shape) -> Vec<(String, Value)> {
    let mut md = tiny(5, true).metadata();
    for (k, v) in md.iter_mut() {
        let n = match k.as_str() {
            "llama.embedding_length" => sh.hidden,
            "llama.feed_forward_length" => sh.ffn,
            "llama.attention.head_count" => sh.q_heads,
            "llama.attention.head_count_kv" => sh.kv_heads,
            "llama.rope.dimension_count" => sh.head_dim,
            "llama.block_count" => sh.layers,
            "llama.context_length" => sh.context,
            _ => continue,
        };
        *v = Value::U32(n as u32);
    }
    md
}

/// Random tensors by GGUF name as a Q4_K_M file types them, with an untied `output`.
fn q4_k_m(sh: Shape) -> Vec<(String, QTensor)> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut t = |shape: &[usize], scale: f32, center: f32, dt: GgmlDType| {
        let h = rand_tensor(&mut rng, shape, center, scale);
        let x = Tensor::from_vec(h.data, h.shape, &Device::Cpu).unwrap();
        QTensor::quantize(&x, dt).unwrap()
    };
    let (q4, q6, f32_) = (GgmlDType::Q4K, GgmlDType::Q6K, GgmlDType::F32);
    let (h, f) = (sh.hidden, sh.ffn);
    let (q, kv) = (sh.q_heads * sh.head_dim, sh.kv_heads * sh.head_dim);
    let mut out = vec![(
        "token_embd.weight".to_string(),
        t(&[VOCAB, h], 1.0, 0.0, q6),
    )];
    for l in 0..sh.layers {
        let s = |cols: usize| 2.0 / (cols as f32).sqrt();
        for (name, shape, dt) in [
            ("attn_q", [q, h], q4),
            ("attn_k", [kv, h], q4),
            ("attn_v", [kv, h], q6),
            ("attn_output", [h, q], q4),
            ("ffn_gate", [f, h], q4),
            ("ffn_up", [f, h], q4),
            ("ffn_down", [h, f], q6),
        ] {
            out.push((
                format!("blk.{l}.{name}.weight"),
                t(&shape, s(shape[1]), 0.0, dt),
            ));
        }
        for n in ["attn_norm", "ffn_norm"] {
            out.push((format!("blk.{l}.{n}.weight"), t(&[h], 0.2, 1.0, f32_)));
        }
    }
    out.push(("output_norm.weight".into(), t(&[h], 0.2, 1.0, f32_)));
    out.push(("output.weight".into(), t(&[VOCAB, h], 0.5, 0.0, q6)));
    out
}

/// Every tensor as candle dequantizes it, stored F32.
fn f32_twin(q: &[(String, QTensor)]) -> Vec<(String, QTensor)> {
    q.iter()
        .map(|(n, q)| {
            let d = q.dequantize(&Device::Cpu).unwrap();
            (n.clone(), QTensor::quantize(&d, GgmlDType::F32).unwrap())
        })
        .collect()
}

fn write(path: &Path, md: &[(String, Value)], tensors: &[(String, QTensor)]) {
    let md: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &md, &ts).unwrap();
}

/// Runs `moa args` in `dir`, expecting success; stdout and stderr together.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = moa().current_dir(dir).args(args).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "moa {args:?}:\n{text}");
    text
}

/// The pipeline's flags for a 1024-token model: two short profile lengths, one held-out
/// sample, generated text (no python3-doc needed).
const PIPELINE: &[&str] = &[
    "pipeline",
    "--profile-lengths",
    "256,512",
    "--validate-length",
    "768",
    "--samples",
    "2",
    "--validate-samples",
    "1",
    "--source",
    "generated",
    "--max-new-tokens",
    "4",
    "--densities",
    "0.5",
    "--time-limit",
    "5",
];

/// The plan's `[[layers]]` rules (its provenance names the work folder, which differs).
fn rules(plan: &Path) -> String {
    let text = std::fs::read_to_string(plan).unwrap();
    text[text.find("[[layers]]").expect("no [[layers]]")..].to_string()
}

/// Prompt and generated ids of a greedy run through the plan's compiled kernels.
fn generate_ids(dir: &Path, model: &str, plan: &str, kernels: &str) -> String {
    let err = ok(
        dir,
        &[
            "generate",
            "--plan",
            plan,
            "--kernels",
            kernels,
            "--model",
            model,
            "--f32",
            "--raw",
            "--prompt-file",
            "prompt.txt",
            "--max-new-tokens",
            "6",
            "--ignore-eos",
            "--print-ids",
        ],
    );
    let ids: Vec<&str> = err.lines().filter(|l| l.contains("ids[0]")).collect();
    assert!(!ids.is_empty(), "no ids printed: {err}");
    ids.join("\n")
}

#[test]
fn a_q4_k_m_gguf_goes_through_the_plan_pipeline_as_its_f32_twin() {
    let dir = scratch("pipeline");
    let (md, quantized) = (metadata(SMALL), q4_k_m(SMALL));
    write(&dir.join("mine-Q4_K_M.gguf"), &md, &quantized);
    write(&dir.join("mine-F32.gguf"), &md, &f32_twin(&quantized));

    let info = ok(&dir, &["model", "info", "mine-Q4_K_M.gguf"]);
    for want in [
        "tensor_types     F32 x 5, Q4_K x 10, Q6_K x 6",
        "tied_embedding   false",
        " MB of memory: f32",
    ] {
        assert!(info.contains(want), "no `{want}` in:\n{info}");
    }

    for stem in ["mine-Q4_K_M", "mine-F32"] {
        let mut args = PIPELINE.to_vec();
        let model = format!("{stem}.gguf");
        args.extend(["--model", &model]);
        ok(&dir, &args);
    }
    // The work folders and plans are named after the lowercased file stems.
    let (q, f) = (dir.join("runs/mine-q4_k_m"), dir.join("runs/mine-f32"));
    // The dense answers, then the influence of every tile: the same bytes.
    for file in [
        "calib.jsonl",
        "heldout.jsonl",
        "profiles/influence_256.safetensors",
        "profiles/influence_512.safetensors",
    ] {
        let (a, b) = (std::fs::read(q.join(file)), std::fs::read(f.join(file)));
        assert!(a.is_ok(), "{file}: {a:?}");
        assert!(a.unwrap() == b.unwrap(), "{file} differs");
    }
    let plan = dir.join("plans/mine-q4_k_m-moa-50.toml");
    assert_eq!(rules(&plan), rules(&dir.join("plans/mine-f32-moa-50.toml")));

    let show = ok(&dir, &["plan", "show", s(&plan), "--prompt-len", "300"]);
    assert!(show.contains("KV density"), "{show}");
    let out = Command::new(env!("CARGO_BIN_EXE_moa-compile"))
        .current_dir(&dir)
        .args([s(&plan), "-o", "kernels", "--dtype", "f32", "-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A prompt past the sink and the least span, so the plan cuts.
    let prompt: String = (0..40).map(|i| format!("word{i} ")).collect();
    std::fs::write(dir.join("prompt.txt"), prompt).unwrap();
    let plan = s(&plan);
    let q_ids = generate_ids(&dir, "mine-Q4_K_M.gguf", plan, "kernels");
    let f_ids = generate_ids(&dir, "mine-F32.gguf", plan, "kernels");
    assert_eq!(q_ids, f_ids);
}

/// A calibration made at lengths past the model's context (here with a 1024-token model of
/// the same tokenizer, used on a 256-token one) was profiled, validated and diagnosed on
/// the CPU reference with no word; `moa calib` and `moa eval` refused such lengths. Now
/// all three refuse it before any weight loads, naming the file, the sample, its tokens and
/// the context; `moa profile --lengths 256` of the same file, whose 512-token samples it
/// does not use, still runs.
#[test]
fn a_calibration_longer_than_the_context_is_refused_naming_the_sample() {
    let dir = scratch("context");
    let tensors = q4_k_m(SMALL);
    write(&dir.join("long.gguf"), &metadata(SMALL), &tensors);
    let short = Shape {
        context: 256,
        ..SMALL
    };
    write(&dir.join("short.gguf"), &metadata(short), &tensors);
    ok(
        &dir,
        &[
            "calib",
            "--model",
            "long.gguf",
            "--out",
            "calib.jsonl",
            "--lengths",
            "256,512",
            "--samples",
            "1",
            "--source",
            "generated",
            "--max-new-tokens",
            "4",
        ],
    );
    // A plan of the model's shape (validate and diagnose need one).
    std::fs::write(
        dir.join("p.toml"),
        "format_version = 1\n[model]\nname = \"tiny\"\nlayers = 2\nq_heads = 4\n\
         kv_heads = 2\nhead_dim = 64\nmax_context_tokens = 256\n[span]\nsink_tokens = 64\n\
         min_span_tokens = 128\nblock_tokens = 64\nmode = \"moa\"\nmax_new_tokens = 32\n\
         [[layers]]\nalpha = [0, 0, 0, 0]\nbeta = [0.5, 0.5, 0.5, 0.5]\n\
         [[layers]]\nalpha = [0, 0, 0, 0]\nbeta = [1, 1, 0.5, 0.5]\n",
    )
    .unwrap();
    let at = |args: &[&str]| {
        let out = moa().current_dir(&dir).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "moa {args:?}:\n{err}");
        for want in [
            "`calib.jsonl`: sample `passkey-512-0` has ",
            "past the context of the model `tiny` (256 tokens): allowed samples of at most 256 tokens",
        ] {
            assert!(err.contains(want), "moa {args:?}: no `{want}` in:\n{err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    };
    let model = ["--model", "short.gguf", "--calib", "calib.jsonl"];
    at(&[
        &["profile", "--lengths", "256,512", "-o", "prof"],
        &model[..],
    ]
    .concat());
    assert!(
        !dir.join("prof").exists(),
        "a refused profile made its folder"
    );
    at(&[&["validate", "--plan", "p.toml"], &model[..]].concat());
    at(&[&["diagnose", "--plan", "p.toml"], &model[..]].concat());
    ok(
        &dir,
        &[
            &["profile", "--lengths", "256", "-o", "prof", "--quiet"],
            &model[..],
        ]
        .concat(),
    );
    assert!(dir.join("prof/influence_256.safetensors").is_file());
}

/// Peak resident memory (KiB) of `moa args` run in `dir`: the largest `VmHWM` of
/// `/proc/PID/status` read while it runs (every 5 ms; the mark only grows, so what is
/// missed is growth in its last 5 ms). Not the child's `ru_maxrss`: Linux folds the
/// spawning process's own peak into a child's at `exec` (`exec_mmap`'s
/// `setmax_mm_hiwater_rss`), and this test runs inside the test group's process, whose
/// other tests hold models: in CI that read 3.7 GB for a 0.7 GB child.
#[cfg(target_os = "linux")]
fn peak_kib(dir: &Path, args: &[&str]) -> i64 {
    let mut child = moa()
        .current_dir(dir)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0i64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            peak = peak.max(hwm.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(status.success(), "moa {args:?}: {status}");
    assert!(peak > 0, "no VmHWM read for moa {args:?}");
    peak
}

/// `moa profile` copied the loaded f32 weights into the profiler's tensors and dropped the
/// loaded copy only afterwards: twice the f32 weights at once (a 4.9 GB Q4_K_M 8B file: 64
/// GB, where the load's memory check counts 32), then the kernel's OOM killer. The
/// weights now move into the profiler: the peak stays near one f32 copy (703 MB for 479
/// MB of f32 weights, where it was 947 MB: 8 layers of hidden 1024, this test's model, on
/// 2 cores, session 45); the bound, 1.75 copies, lies between the two.
#[cfg(target_os = "linux")]
#[test]
fn profiling_a_quantized_gguf_holds_its_f32_weights_once() {
    let dir = scratch("memory");
    let sh = Shape {
        hidden: 1024,
        ffn: 4096,
        q_heads: 16,
        layers: 8,
        ..SMALL
    };
    write(&dir.join("m.gguf"), &metadata(sh), &q4_k_m(sh));
    let info = ok(&dir, &["model", "info", "m.gguf"]);
    let mb: f64 = info
        .split("loading needs about ")
        .nth(1)
        .and_then(|t| t.split(" MB").next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no f32 size in:\n{info}"));
    ok(
        &dir,
        &[
            "calib",
            "--model",
            "m.gguf",
            "--out",
            "calib.jsonl",
            "--lengths",
            "256",
            "--samples",
            "1",
            "--source",
            "generated",
            "--max-new-tokens",
            "2",
        ],
    );
    let args = [
        "profile",
        "--model",
        "m.gguf",
        "--calib",
        "calib.jsonl",
        "--lengths",
        "256",
        "-o",
        "prof",
        "--quiet",
    ];
    let peak_mb = peak_kib(&dir, &args) as f64 * 1024.0 / 1e6;
    eprintln!("f32 weights {mb} MB, profile peak {peak_mb:.0} MB");
    assert!(
        peak_mb < 1.75 * mb,
        "profile's peak {peak_mb:.0} MB for {mb} MB of f32 weights: the weights are held twice"
    );
}
