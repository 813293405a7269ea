//! Live host bytes of the profiler's backward walk, layer by layer, on the CPU: a counting
//! global allocator around `GradModel`'s public steps (the GPU path of
//! `profile::sample_influence`: forward keeping layer inputs, the top gradient, then
//! `layer_backward_groups` per layer with the influence summed per KV group). A walk that
//! keeps something per layer alive shows as live bytes growing from layer to layer.
//!
//! ```sh
//! cargo run --example profile_memory -- [T] [layers] [hidden] [heads]
//! ```
//! Defaults: a Llama-2-7B-like shape scaled down (MHA, head_dim 64, ffn = 2.6875 hidden)
//! at T = 512.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::DType;
use moa::model::random::random_weights;
use moa::model::LlamaConfig;
use moa::profile::{influence, GradModel, LossSpan};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static A: Counting = Counting;

fn mib(b: usize) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

fn main() -> anyhow::Result<()> {
    let arg = |i: usize, d: usize| -> usize {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (t, layers, hidden, heads) = (arg(1, 512), arg(2, 6), arg(3, 512), arg(4, 8));
    let config = LlamaConfig {
        name: Some("random 7b-like".into()),
        n_layers: layers,
        hidden_size: hidden,
        ffn_size: hidden * 43 / 16,
        q_heads: heads,
        kv_heads: heads,
        head_dim: hidden / heads,
        rope_theta: 10_000.0,
        rope_scaling: None,
        rms_norm_eps: 1e-5,
        vocab_size: 1000,
        tied_embeddings: false,
        context_length: 16_384,
    };
    let weights = random_weights(&config, 0);
    let mut model = GradModel::new(config.clone(), &weights, DType::F32)?;
    // The forward chunks hold as many heads as at the 7B shape at T = 8192 when this shape
    // is that one scaled by s in T and hidden (1 GiB / s²): MOA_CHUNK_SCALE = s.
    if let Some(s) = std::env::var("MOA_CHUNK_SCALE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        model.attn_chunk_bytes = (1usize << 30) / (s * s);
    }
    println!("forward head chunks: {:?}", model.head_chunks(t));
    drop(weights);
    let tokens: Vec<u32> = (0..t as u32).map(|i| 1 + (i * 7919) % 997).collect();
    let span = LossSpan {
        tokens: &tokens,
        response: t - 16..t,
    };
    let (block, nb) = (64, t.div_ceil(64));
    let xt = t * hidden * 4;
    println!(
        "T={t} layers={layers} hidden={hidden} heads={heads}: one [T, hidden] f32 = {:.2} MiB, \
         one head's [T, T] f32 = {:.2} MiB",
        mib(xt),
        mib(t * t * 4)
    );
    let base = LIVE.load(Ordering::Relaxed);
    let ctx = model.context(t)?;
    let mut xs = model.forward_inputs(&tokens, &ctx, None)?;
    println!(
        "after forward: live {:.1} MiB over the weights ({} layer inputs kept)",
        mib(LIVE.load(Ordering::Relaxed) - base),
        xs.len()
    );
    let last = xs.pop().unwrap();
    let (mut grad, loss) = model.top_grad(&last, &span)?;
    drop(last);
    println!(
        "loss {loss:.4}; gradient tracks an autograd graph: {}",
        grad.track_op()
    );
    for l in (0..layers).rev() {
        PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        let x = xs.pop().unwrap();
        // Peaks between visits: step (1) and the first group's autograd, then each
        // group's influence sums and the next group's autograd.
        let (mut autograd, mut infl) = (0usize, 0usize);
        let mut first = None;
        grad = model.layer_backward_groups(l, &x, &grad, &ctx, &mut |_, a, g| {
            let p = PEAK.swap(LIVE.load(Ordering::Relaxed), Ordering::Relaxed) - base;
            if first.is_none() {
                first = Some(p);
            }
            autograd = autograd.max(p);
            influence::group_tiles_and_cuts(a, g, block, nb, 64)?;
            infl = infl.max(PEAK.swap(LIVE.load(Ordering::Relaxed), Ordering::Relaxed) - base);
            Ok(())
        })?;
        drop(x);
        println!(
            "layer {l:>2}: live {:>7.1} MiB over the weights; peaks: step 1 + first group \
             {:>7.1}, a group's autograd {:>7.1}, influence {:>7.1} MiB; gradient tracks a \
             graph: {}",
            mib(LIVE.load(Ordering::Relaxed) - base),
            mib(first.unwrap_or(0)),
            mib(autograd),
            mib(infl),
            grad.track_op()
        );
    }
    Ok(())
}
