//! Round 34's plans (tests/user_round34.rs, tests/wgpu_kernels.rs): one layer of many
//! query heads over one KV head at a small head_dim.
#![allow(dead_code)]

/// One layer of `q_heads` query heads over 1 KV head at `head_dim`: sink 16, block 8,
/// minimum span 8; head h has α = 8 · (h mod 5) and β = (h mod 3) / 8, so some spans (8 at
/// small N) are shorter than the sink and others grow with N.
pub fn mqa_toml(q_heads: u32, head_dim: u32) -> String {
    let alpha: Vec<String> = (0..q_heads).map(|h| (8 * (h % 5)).to_string()).collect();
    let beta: Vec<String> = (0..q_heads)
        .map(|h| format!("{}", (h % 3) as f64 / 8.0))
        .collect();
    format!(
        "format_version = 1\n[model]\nname = \"mqa{q_heads}-d{head_dim}\"\nlayers = 1\n\
         q_heads = {q_heads}\nkv_heads = 1\nhead_dim = {head_dim}\nmax_context_tokens = 1024\n\
         [span]\nsink_tokens = 16\nmin_span_tokens = 8\nblock_tokens = 8\nmode = \"moa\"\n\
         max_new_tokens = 8\n[[layers]]\nalpha = [{}]\nbeta = [{}]\n",
        alpha.join(", "),
        beta.join(", ")
    )
}

/// The small head dims of round 34.
pub const HEAD_DIMS: [u32; 3] = [4, 8, 16];
