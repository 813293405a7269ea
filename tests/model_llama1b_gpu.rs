//! The Llama-3.2-1B shape (random weights, f16 storage) on the wgpu engine at the
//! adapter's real binding limit: its 525 MB embedding is above lavapipe's 128 MiB, so it
//! loads only through the row split of DESIGN.md §7. Dense and with the imported upstream
//! MoA plan. Ignored in CI (≈ 5 GB of host weights, minutes on lavapipe); run by hand:
//! `cargo test --locked --test model_llama1b_gpu -- --ignored --nocapture`
//! (timings recorded in benches/RESULTS.md).

use std::path::{Path, PathBuf};
use std::time::Instant;

use moa::model::{
    HostTensor, LayerWeights, LlamaConfig, Model, ModelFormat, SpecialTokens, Weights,
};
use moa::plan::upstream;
use moa::runtime::engine::{Engine, Sampling};
use moa::runtime::wgpu::WgpuContext;
use moa::runtime::wgpu_engine::WgpuEngine;

fn llama_3_2_1b() -> LlamaConfig {
    moa::model::random::like("llama-3.2-1b").expect("a known shape")
}

/// Uniform weights in ±`scale` from a xorshift stream (fast enough in a debug build for
/// 1.2 billion values).
fn random(shape: &[usize], center: f32, scale: f32, seed: &mut u64) -> HostTensor {
    let n: usize = shape.iter().product();
    let mut data = Vec::with_capacity(n);
    let mut s = *seed;
    for _ in 0..n {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let u = (s >> 40) as f32 / (1u64 << 24) as f32;
        data.push(center + scale * (2.0 * u - 1.0));
    }
    *seed = s;
    HostTensor::new(shape.to_vec(), data).unwrap()
}

fn random_model(c: &LlamaConfig) -> Model {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let (h, f, d) = (c.hidden_size, c.ffn_size, c.head_dim);
    let w = |rows: usize, cols: usize, seed: &mut u64| {
        random(&[rows, cols], 0.0, (3.0 / cols as f32).sqrt(), seed)
    };
    let layers = (0..c.n_layers)
        .map(|_| LayerWeights {
            attn_norm: random(&[h], 1.0, 0.1, &mut seed),
            attn_q: w(c.q_heads * d, h, &mut seed),
            attn_k: w(c.kv_heads * d, h, &mut seed),
            attn_v: w(c.kv_heads * d, h, &mut seed),
            attn_output: w(h, c.q_heads * d, &mut seed),
            ffn_norm: random(&[h], 1.0, 0.1, &mut seed),
            ffn_gate: w(f, h, &mut seed),
            ffn_up: w(f, h, &mut seed),
            ffn_down: w(h, f, &mut seed),
        })
        .collect();
    Model {
        path: PathBuf::from("random-llama-3.2-1b"),
        format: ModelFormat::HfFolder,
        config: c.clone(),
        weights: Weights {
            token_embd: random(&[c.vocab_size, h], 0.0, 1.0, &mut seed),
            layers,
            output_norm: random(&[h], 1.0, 0.1, &mut seed),
            output: None,
        },
        special: SpecialTokens {
            bos: None,
            eos: vec![],
        },
    }
}

#[test]
#[ignore = "≈ 5 GB of host weights and minutes on lavapipe: run by hand (module docs)"]
fn llama_3_2_1b_shape_loads_and_generates_at_the_adapter_limit() {
    let c = llama_3_2_1b();
    let t0 = Instant::now();
    let model = random_model(&c);
    eprintln!("random weights: {:.1} s", t0.elapsed().as_secs_f64());
    let ctx = WgpuContext::new().expect("a wgpu adapter (lavapipe in CI) is required");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upstream-plans/meta-llama--Llama-3.2-1B-Instruct");
    let path = dir.join("moa_alpha_beta.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let plan = upstream::import(&text, &path.display().to_string(), c.model_shape()).unwrap();
    let prompt: Vec<u32> = (0..16)
        .map(|i| (i * 7919 + 11) % c.vocab_size as u32)
        .collect();
    let new = 4;
    for (name, plan) in [("dense", None), ("upstream moa", Some(&plan))] {
        let t = Instant::now();
        let gpu = WgpuEngine::new(&ctx, &model, plan, false).unwrap();
        let load = t.elapsed().as_secs_f64();
        let limit = gpu.max_binding();
        assert!(c.vocab_size as u64 * c.hidden_size as u64 * 2 > limit || limit > 1 << 30);
        let mut req = gpu.start(&[prompt.len()], new, 0).unwrap();
        let t = Instant::now();
        let mut out = gpu
            .prefill_tokens(&mut req, std::slice::from_ref(&prompt), Sampling::greedy())
            .unwrap();
        let prefill = t.elapsed().as_secs_f64();
        let t = Instant::now();
        while out.len() < new {
            let next = gpu
                .decode_tokens(&mut req, &[*out.last().unwrap()], Sampling::greedy())
                .unwrap();
            out.push(next[0]);
        }
        let decode = t.elapsed().as_secs_f64();
        assert!(out.iter().all(|&t| (t as usize) < c.vocab_size));
        eprintln!(
            "{name}: {} ({} storage, binding limit {limit} B, weights {:.2} GB): load {load:.1} s, \
             prefill {} tokens {prefill:.1} s, decode {} tokens {decode:.1} s ({:.2} tok/s), tokens {out:?}",
            gpu.describe(),
            gpu.storage().name(),
            gpu.weight_bytes() as f64 / 1e9,
            prompt.len(),
            new - 1,
            (new - 1) as f64 / decode,
        );
    }
}
