//! Runs the embedded kernels of a MoA plan on a random-weight model of the plan's shape,
//! through moa's engine trait, and checks every logit against moa's CPU reference with the
//! same plan's mask: a ragged prefill of two rows, then greedy decode steps. Exits non-zero
//! on any difference above the tolerance. No model file, plan file or compiler is used at
//! run time; the GPU is whatever wgpu finds (lavapipe on CI).

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use moa::model::{CpuReference, HostTensor, LayerWeights, LlamaConfig, Masking};
use moa::model::{ModelFormat, SpecialTokens, Weights};
use moa::{Model, Plan, Sampling, WgpuContext};

/// Largest |GPU − CPU| logit allowed (f32 storage; measured: ~2e-6).
const TOLERANCE: f32 = 2e-3;

fn main() -> Result<(), Box<dyn Error>> {
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    let t0 = Instant::now();
    if let Some(path) = std::env::args().nth(1) {
        let ctx = WgpuContext::new()?;
        let answer = myapp::chat(&ctx, std::path::Path::new(&path), "Hello there", 8)?;
        println!("myapp: chat answer {answer:?} in {:.1} s", t0.elapsed().as_secs_f64());
        return Ok(());
    }
    let plan = myapp::plan()?;
    let model = random_model(&plan, 7)?;
    let ctx = WgpuContext::new()?;
    let engine = myapp::engine(&ctx, &model)?;
    println!(
        "moa-embed: plan `{}` ({} layers, {} KV heads) on {}, {} storage; {} kernels embedded",
        plan.model().name.as_deref().unwrap_or("?"),
        plan.model().layers,
        plan.model().kv_heads,
        engine.describe(),
        engine.storage().name(),
        myapp::generated::KERNELS.len(),
    );
    let vocab = model.config.vocab_size;
    let prompts: Vec<Vec<u32>> = [(400, 1u64), (230, 2)]
        .iter()
        .map(|&(n, s)| {
            (0..n)
                .map(|i| ((i * 31 + s * 17) % vocab as u64) as u32)
                .collect()
        })
        .collect();
    let steps = 6;
    let lens: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let mut req = engine.start(&lens, steps, 0)?;
    let n_tokens = req.n_tokens();
    let masking = Masking::Plan {
        plan: &plan,
        n_tokens,
    };
    // The CPU reference runs each row incrementally (its own KV cache), as the engine does.
    let cpu = CpuReference::from_model(model.clone())?;
    let mut caches: Vec<_> = prompts.iter().map(|_| cpu.new_cache()).collect();
    let mut worst = 0.0f32;
    let mut check = |what: &str, got: &[Vec<f32>], inputs: &[&[u32]]| -> Result<(), String> {
        for (b, (row, input)) in got.iter().zip(inputs).enumerate() {
            let want = cpu
                .next_token_logits(&mut caches[b], input, masking)
                .map_err(|e| e.to_string())?;
            let err = max_err(row, &want);
            worst = worst.max(err);
            if err > TOLERANCE {
                return Err(format!(
                    "{what}, row {b}: max |GPU - CPU| logit {err} > {TOLERANCE}"
                ));
            }
        }
        Ok(())
    };
    let t_gpu = Instant::now();
    let logits = engine.prefill_logits(&mut req, &prompts)?;
    let mut gpu_s = t_gpu.elapsed().as_secs_f64();
    let inputs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    check("prefill", &logits, &inputs)?;
    // Guard: at this N the plan's mask really differs from dense attention, so agreeing
    // with the reference above checks the embedded kernels' spans, not just a causal mask.
    let dense = cpu.next_token_logits(&mut cpu.new_cache(), &prompts[0], Masking::Dense)?;
    if max_err(&logits[0], &dense) < 10.0 * TOLERANCE {
        return Err("the plan's mask does not change the logits at this N: the check would not see wrong spans".into());
    }
    let mut next: Vec<u32> = logits.iter().map(|l| argmax(l)).collect();
    let first = next.clone();
    for step in 0..steps - 1 {
        let t_gpu = Instant::now();
        let logits = engine.decode_logits(&mut req, &next)?;
        gpu_s += t_gpu.elapsed().as_secs_f64();
        let inputs: Vec<&[u32]> = next.iter().map(std::slice::from_ref).collect();
        check(&format!("decode step {step}"), &logits, &inputs)?;
        next = logits.iter().map(|l| argmax(l)).collect();
    }
    // The on-device greedy choice agrees with the host's argmax of the same logits.
    let mut req2 = engine.start(&lens, steps, 0)?;
    let chosen = engine.prefill_tokens(&mut req2, &prompts, Sampling::greedy())?;
    if chosen != first {
        return Err(
            format!("greedy prefill chose {chosen:?}, the logits' argmax is {first:?}").into(),
        );
    }
    println!(
        "moa-embed: N = {n_tokens}, KV cache {} bytes ({:.0}% of dense); prefill + {} decode steps match the CPU reference (max |err| {worst:.2e}); {:.1} s in all, {gpu_s:.1} s on the GPU",
        req.kv_bytes(),
        100.0 * req.kv_bytes() as f64 / dense_kv_bytes(&plan, lens.len(), n_tokens) as f64,
        steps - 1,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn max_err(a: &[f32], b: &[f32]) -> f32 {
    // NaN-aware: a fold with f32::max alone skips NaN (NaN logits passed such a check).
    moa::runtime::cases::max_abs_error(a, b).0
}

fn argmax(v: &[f32]) -> u32 {
    moa::model::reference::argmax(v)
}

/// K and V bytes of the same request with every span N (f32).
fn dense_kv_bytes(plan: &Plan, rows: usize, n_tokens: u32) -> u64 {
    let m = plan.model();
    2 * u64::from(m.layers)
        * u64::from(m.kv_heads)
        * u64::from(m.head_dim)
        * u64::from(n_tokens)
        * rows as u64
        * 4
}

/// A Llama model of the plan's shape (hidden = SwiGLU width = q_heads × head_dim, a
/// 256-token vocabulary, tied embeddings) with uniform random weights scaled by
/// 1/sqrt(fan-in), from `seed`: real arithmetic, no file.
fn random_model(plan: &Plan, seed: u64) -> Result<Model, Box<dyn Error>> {
    let m = plan.model();
    let (hd, q, kv) = (m.head_dim as usize, m.q_heads as usize, m.kv_heads as usize);
    let hidden = q * hd;
    let ffn = hidden;
    let vocab = 256;
    let config = LlamaConfig {
        name: Some("random".into()),
        n_layers: m.layers as usize,
        hidden_size: hidden,
        ffn_size: ffn,
        q_heads: q,
        kv_heads: kv,
        head_dim: hd,
        rope_theta: 10_000.0,
        rope_scaling: None,
        rms_norm_eps: 1e-5,
        vocab_size: vocab,
        tied_embeddings: true,
        context_length: m.max_context_tokens as usize,
    };
    let mut state = seed;
    // splitmix64: a few lines instead of a dependency.
    let mut uniform = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    let mut matrix = |rows: usize, cols: usize| {
        let scale = 1.0 / (cols as f32).sqrt();
        let data = (0..rows * cols).map(|_| uniform() * scale).collect();
        HostTensor::new(vec![rows, cols], data)
    };
    let token_embd = matrix(vocab, hidden)?;
    let mut layers = Vec::new();
    for _ in 0..m.layers {
        layers.push(LayerWeights {
            attn_norm: HostTensor::new(vec![hidden], vec![1.0; hidden])?,
            attn_q: matrix(q * hd, hidden)?,
            attn_k: matrix(kv * hd, hidden)?,
            attn_v: matrix(kv * hd, hidden)?,
            attn_output: matrix(hidden, q * hd)?,
            ffn_norm: HostTensor::new(vec![hidden], vec![1.0; hidden])?,
            ffn_gate: matrix(ffn, hidden)?,
            ffn_up: matrix(ffn, hidden)?,
            ffn_down: matrix(hidden, ffn)?,
        });
    }
    Ok(Model {
        path: PathBuf::from("<random weights>"),
        // Not read from any file; the format only matters to loaders.
        format: ModelFormat::Gguf,
        config,
        weights: Weights {
            token_embd,
            layers,
            output_norm: HostTensor::new(vec![hidden], vec![1.0; hidden])?,
            output: None,
        },
        special: SpecialTokens {
            bos: None,
            eos: Vec::new(),
        },
    })
}
