//! The wgpu engine's prefill products on this adapter (issue 12 item 2): which
//! cooperative-matrix configurations the adapter reports, which products the engine chose
//! (and its start-up check), the logits of a SmolLM2-shaped random model through the
//! matrix-unit and the tiled products against the CPU reference, and prefill tokens/s and
//! decode dispatches per step of both side by side.
//!
//! ```sh
//! cargo run --release --example wgpu_products -- 16 1024
//! cargo run --release --example wgpu_products -- --gemm 32768 10
//! ```
//!
//! Arguments: rows and prompt length of the timed prefill (default 16 × 1024).
//! `--gemm [M] [REPS]` instead times the product on matrix units alone
//! (`wgpu_engine::product_bench`) at SmolLM2's prefill shapes with M tokens (default 32 768:
//! QKV 960 × 576, out 576 × 576, gate/up 3072 × 576, down 576 × 1536; outputs of stride
//! N + 8, as aligned as the engine's; since session 28 as the engine runs them: a residual
//! on out and down only, out's x in f16, each first against session 27's layout, a
//! residual on every product and f32 x; ~1 s of QKV first, untimed, while the clocks
//! ramp up): the engine's build (without naga's runtime checks,
//! every 64 × 32 block inside the output stored straight to it: DIRECT 2) against each
//! variant (every tile through the scratch, session 27's epilogue; whole tiles only
//! straight; with the checks; the timing diagnostics: no loads
//! after the first stage, no multiply-adds, no write-out), alternated (default, v, v,
//! default), REPS dispatches a timing (default 10), in TFLOP/s (2·M·N·K per product),
//! after checking the builds against the CPU on shapes that are not multiples of the
//! tiles, with aligned and unaligned outputs and f32 or f16 x. Since session 30 each product
//! the engine feeds f32 x (qkv, gate/up, down) is also timed with f16 x against it.

use std::process::ExitCode;
use std::time::Instant;

use moa::model::random::{like, random_model};
use moa::model::{CpuReference, Masking};
use moa::runtime::engine::{Engine, Sampling};
use moa::runtime::wgpu::WgpuContext;
use moa::runtime::wgpu_engine::WgpuEngine;

fn main() -> ExitCode {
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wgpu_products: {e}");
            ExitCode::FAILURE
        }
    }
}

fn ids(n: usize, seed: u64, vocab: usize) -> Vec<u32> {
    (0..n as u64)
        .map(|i| ((i * 7919 + seed * 104_729 + i * i) % vocab as u64) as u32)
        .collect()
}

/// `--gemm`: the product on matrix units alone, each variant against the default.
fn gemm(args: &[usize]) -> Result<(), Box<dyn std::error::Error>> {
    use moa::lower::StorageType;
    use moa::runtime::wgpu_engine::product_bench::{CoopProduct, IoForm, ProductIo};
    let m = args.first().copied().unwrap_or(32_768);
    let reps = args.get(1).copied().unwrap_or(10) as u32;
    let ctx = WgpuContext::new()?;
    println!("adapter: {} ({:?})", ctx.adapter_name(), ctx.backend());
    println!("chosen: {:?}", ctx.coop_matrix());
    // (name, naga's runtime checks, DIRECT, diagnostic); the first is the engine's
    // default. Each for f32 x and for f16 x (the engine's out product).
    let all = [
        ("default", false, 2, 0),
        ("scratch", false, 0, 0),
        ("whole", false, 1, 0),
        ("checked", true, 2, 0),
        ("noload", false, 2, 1),
        ("nomma", false, 2, 2),
        ("nowrite", false, 2, 3),
    ];
    // `GEMM_VARIANTS=noload,nowrite` keeps those variants beside the default (a short
    // device call); unset: all.
    let keep = std::env::var("GEMM_VARIANTS").ok();
    let variants: Vec<_> = all
        .into_iter()
        .filter(|v| {
            v.0 == "default"
                || keep
                    .as_deref()
                    .is_none_or(|k| k.split(',').any(|n| n == v.0))
        })
        .collect();
    // (name, diagnostic, x in f16, product)
    let mut built = Vec::new();
    for x_f16 in [false, true] {
        let input = if x_f16 {
            StorageType::F16
        } else {
            StorageType::F32
        };
        for &(name, checked, direct, diag) in &variants {
            match CoopProduct::with_input(&ctx, input, checked, direct, diag) {
                Ok(p) => built.push((name, diag, x_f16, p)),
                Err(e) => println!("{name} (x f16 {x_f16}): {e}"),
            }
        }
    }
    for shape in [
        [70, 84, 100],
        [130, 72, 36],
        [300, 200, 576],
        [257, 960, 1536],
        [384, 256, 576],
    ] {
        for (aligned, x_f16) in [(true, false), (false, false), (true, true)] {
            let form = IoForm {
                aligned,
                residual: true,
                x_f16,
                swiglu: false,
            };
            let io = ProductIo::new(&ctx, shape, form);
            for (name, _, _, p) in built.iter().filter(|v| v.1 == 0 && v.2 == x_f16) {
                let err = p.check(&ctx, &io)?;
                println!(
                    "check {name} {shape:?} (m, n, k) aligned {aligned} x f16 {x_f16}: max |err| / max |value| {err:.2e}"
                );
            }
        }
    }
    // SwiGLU in the gate/up epilogue (session 29): act columns (ffn) not a multiple of the
    // 64-column tile or of a fragment, K not a multiple of 8 or of the stage.
    let swiglu = CoopProduct::swiglu(&ctx)?;
    for shape in [[70, 72, 100], [257, 200, 576], [128, 1536, 576]] {
        let form = IoForm {
            aligned: false,
            residual: false,
            x_f16: false,
            swiglu: true,
        };
        let io = ProductIo::new(&ctx, shape, form);
        let err = swiglu.check(&ctx, &io)?;
        println!("check swiglu {shape:?} (m, ffn, k): max |err| / max |value| {err:.2e}");
    }
    // As the engine runs them: a residual on out and down only, out's x in f16.
    let shapes = [
        ("qkv", 960, 576, false, false),
        ("out", 576, 576, true, true),
        ("gate_up", 3072, 576, false, false),
        ("down", 576, 1536, true, false),
    ];
    let default_for = |x_f16: bool| {
        built
            .iter()
            .find(|v| v.0 == "default" && v.2 == x_f16)
            .map(|v| &v.3)
            .ok_or("the default product did not compile")
    };
    // The clocks ramp up over the first timings of a process (session 28, call 1): ~1 s
    // of the first shape's product first, untimed.
    {
        let form = IoForm {
            aligned: true,
            residual: true,
            x_f16: false,
            swiglu: false,
        };
        let io = ProductIo::new(&ctx, [m, 960, 576], form);
        default_for(false)?.time(&ctx, &io, 1000)?;
    }
    for (what, n, k, residual, x_f16) in shapes {
        let form = IoForm {
            aligned: true,
            residual,
            x_f16,
            swiglu: false,
        };
        let io = ProductIo::new(&ctx, [m, n, k], form);
        // Session 27's bench layout (a residual, f32 x) for the default, against the
        // engine's.
        let bench27 = ProductIo::new(
            &ctx,
            [m, n, k],
            IoForm {
                aligned: true,
                residual: true,
                x_f16: false,
                swiglu: false,
            },
        );
        let flop = 2.0 * (m * n * k) as f64;
        let line = |label: &str, runs: [(&str, &CoopProduct, &ProductIo); 4]| {
            let mut line = format!("gemm {what} M {m} N {n} K {k} ({label}):");
            for (name, p, io) in runs {
                let secs = p.time(&ctx, io, reps)?;
                line += &format!(
                    " {name} {:.3} ms {:.1} TFLOP/s;",
                    secs * 1e3,
                    flop / secs / 1e12
                );
            }
            Ok::<String, String>(line)
        };
        let base = default_for(x_f16)?;
        let b27 = default_for(false)?;
        println!(
            "{}",
            line(
                &format!("residual {residual}, x f16 {x_f16} against residual, f32 x"),
                [
                    ("default", base, &io),
                    ("default-r-f32", b27, &bench27),
                    ("default-r-f32", b27, &bench27),
                    ("default", base, &io)
                ]
            )?
        );
        if what == "gate_up" {
            // The gate/up product then the SwiGLU pass (timed by the engine's profile)
            // against SwiGLU in its epilogue: act of stride ffn from column 0.
            let sio = ProductIo::new(
                &ctx,
                [m, n / 2, k],
                IoForm {
                    aligned: true,
                    residual: false,
                    x_f16: false,
                    swiglu: true,
                },
            );
            let runs = [
                ("default", base, &io),
                ("swiglu", &swiglu, &sio),
                ("swiglu", &swiglu, &sio),
                ("default", base, &io),
            ];
            println!("{}", line("gate/up product against SwiGLU in it", runs)?);
        }
        // The products the engine feeds f32 x, with f16 x (session 30: what f16 normed
        // activations and an f16 act would give; on the H200 6-13% faster).
        if !x_f16 {
            let io16 = ProductIo::new(
                &ctx,
                [m, n, k],
                IoForm {
                    aligned: true,
                    residual,
                    x_f16: true,
                    swiglu: false,
                },
            );
            let b16 = default_for(true)?;
            let runs = [
                ("default", base, &io),
                ("default-x-f16", b16, &io16),
                ("default-x-f16", b16, &io16),
                ("default", base, &io),
            ];
            println!(
                "{}",
                line(&format!("residual {residual}, f32 x against x f16"), runs)?
            );
        }
        for (name, _, _, p) in built.iter().filter(|v| v.2 == x_f16 && v.0 != "default") {
            let label = format!("residual {residual}, x f16 {x_f16}");
            let runs = [
                ("default", base, &io),
                (*name, p, &io),
                (*name, p, &io),
                ("default", base, &io),
            ];
            println!("{}", line(&label, runs)?);
        }
    }
    Ok(())
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("--gemm") {
        let rest: Vec<usize> = raw[1..]
            .iter()
            .map(|a| a.parse())
            .collect::<Result<_, _>>()?;
        return gemm(&rest);
    }
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let rows = args.first().copied().unwrap_or(16);
    let len = args.get(1).copied().unwrap_or(1024);
    let ctx = WgpuContext::new()?;
    println!("adapter: {} ({:?})", ctx.adapter_name(), ctx.backend());
    println!(
        "cooperative-matrix configurations: {:?}",
        ctx.coop_configs()
    );
    println!("chosen: {:?}", ctx.coop_matrix());
    let config = like("smollm2-135m").ok_or("no smollm2-135m shape")?;
    let model = random_model(&config, 7);
    let vocab = config.vocab_size;
    let coop = WgpuEngine::new(&ctx, &model, None, false)?;
    let mut tiled = WgpuEngine::new(&ctx, &model, None, false)?;
    tiled.disable_coop_matrix();
    println!("engine: {}", coop.describe());

    // Logits of the last prompt token against the CPU reference (f16 weights on the GPU).
    let cpu = CpuReference::from_model(model.clone())?;
    let prompts: Vec<Vec<u32>> = [150usize, 97, 64]
        .iter()
        .enumerate()
        .map(|(i, &n)| ids(n, i as u64 + 1, vocab))
        .collect();
    let lens: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let want: Vec<Vec<f32>> = prompts
        .iter()
        .map(|p| {
            let all = cpu.forward(p, Masking::Dense)?;
            Ok(all.data[(p.len() - 1) * vocab..p.len() * vocab].to_vec())
        })
        .collect::<Result<_, moa::model::ModelError>>()?;
    let argmax = |v: &[f32]| {
        v.iter()
            .enumerate()
            .fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b })
            .0
    };
    for (name, engine) in [("coop", &coop), ("tiled", &tiled)] {
        let mut req = engine.start(&lens, 1, 0)?;
        let got = engine.prefill_logits(&mut req, &prompts)?;
        let mut err = 0f32;
        let mut same = 0;
        for (g, w) in got.iter().zip(&want) {
            err = g
                .iter()
                .zip(w)
                .map(|(a, b)| (a - b).abs())
                .fold(err, f32::max);
            same += usize::from(argmax(g) == argmax(w));
        }
        println!(
            "parity {name}: max |logit err| {err:.4} against the CPU reference, argmax equal {same}/{}",
            prompts.len()
        );
    }

    // Prefill tokens/s and a short decode, side by side.
    let big: Vec<Vec<u32>> = (0..rows).map(|r| ids(len, 100 + r as u64, vocab)).collect();
    let big_lens = vec![len; rows];
    for (name, engine) in [("coop", &coop), ("tiled", &tiled), ("coop", &coop)] {
        let mut req = engine.start(&big_lens, 16, 0)?;
        let t0 = Instant::now();
        let mut next = engine.prefill_tokens(&mut req, &big, Sampling::greedy())?;
        let prefill = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        for _ in 0..15 {
            next = engine.decode_tokens(&mut req, &next, Sampling::greedy())?;
        }
        let decode = t1.elapsed().as_secs_f64();
        let stats = engine.decode_stats(&req)?;
        println!(
            "{name}: prefill {rows}x{len} in {prefill:.3} s = {:.0} tok/s; decode {:.0} tok/s; {}",
            (rows * len) as f64 / prefill,
            (rows * 15) as f64 / decode,
            stats.summary()
        );
    }
    Ok(())
}
