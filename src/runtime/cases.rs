//! Deterministic random test cases for the attention kernels, with their expected
//! outputs from the CPU reference. The wgpu tests and the CUDA check on the GPU run
//! exactly these cases, so a failure on one back end can be replayed on the other.

#![warn(missing_docs)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::reference::{decode_ref, fill_cache_row, prefill_ref};
use crate::lower::{CacheLayout, KernelModule, StorageType};

/// A ragged prefill batch for one layer.
#[derive(Clone, Debug)]
pub struct PrefillCase {
    /// `l<layer> prefill rows [lengths] N=<n>`, naming the case in failures.
    pub name: String,
    /// Index into the module's layers (not the plan's layer number).
    pub layer: usize,
    /// N the spans are evaluated at.
    pub n_tokens: u32,
    /// Row b is tokens `row_start[b]..row_start[b+1]` of the packed tensors.
    pub row_start: Vec<u32>,
    /// `[total, q_heads, head_dim]`
    pub q: Vec<f32>,
    /// `[total, kv_heads, head_dim]`
    pub k: Vec<f32>,
    /// `[total, kv_heads, head_dim]`
    pub v: Vec<f32>,
    /// `[total, q_heads, head_dim]`
    pub expected: Vec<f32>,
}

impl PrefillCase {
    /// The longest row, in tokens (0 for no rows).
    pub fn max_len(&self) -> u32 {
        self.row_start
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(0)
    }
}

/// One decode step for one layer: every row's current token already in the cache.
#[derive(Clone, Debug)]
pub struct DecodeCase {
    /// `l<layer> decode rows at [positions] N=<n>`, naming the case in failures.
    pub name: String,
    /// Index into the module's layers (not the plan's layer number).
    pub layer: usize,
    /// The layer's sink + ring cache layout at N (`layout.n_tokens`).
    pub layout: CacheLayout,
    /// Position of each row's current token.
    pub row_pos: Vec<u32>,
    /// `[rows, q_heads, head_dim]`
    pub q: Vec<f32>,
    /// `[rows, layout.row_slots, head_dim]`
    pub k_cache: Vec<f32>,
    /// `[rows, layout.row_slots, head_dim]`
    pub v_cache: Vec<f32>,
    /// `[rows, q_heads, head_dim]`
    pub expected: Vec<f32>,
}

/// Values the storage type can hold exactly, so the reference sees what the kernel reads.
fn quantize(x: f32, storage: StorageType) -> f32 {
    storage.quantize(x)
}

fn random_vec(rng: &mut StdRng, n: usize, amp: f32, storage: StorageType) -> Vec<f32> {
    (0..n)
        .map(|_| quantize(rng.random_range(-amp..amp), storage))
        .collect()
}

/// A prefill case of layer `layer` (index into `module.layers`; panics past them): rows
/// of `row_lens` tokens packed, N = `n_tokens`, Q uniform in ±2 and K, V in ±1 from
/// `seed`, rounded to the module's storage type; `expected` from the CPU reference
/// (`reference::prefill_ref`).
pub fn prefill_case(
    module: &KernelModule,
    layer: usize,
    row_lens: &[u32],
    n_tokens: u32,
    seed: u64,
) -> PrefillCase {
    let s = &module.shape;
    let (hq, hkv, d) = (s.q_heads as usize, s.kv_heads as usize, s.head_dim as usize);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut row_start = vec![0u32];
    for &l in row_lens {
        row_start.push(row_start.last().copied().unwrap_or(0) + l);
    }
    let total = *row_start.last().unwrap_or(&0) as usize;
    // Queries with a larger amplitude give peaked softmax rows, so a wrong mask shows.
    let q = random_vec(&mut rng, total * hq * d, 2.0, module.storage);
    let k = random_vec(&mut rng, total * hkv * d, 1.0, module.storage);
    let v = random_vec(&mut rng, total * hkv * d, 1.0, module.storage);
    let spec = &module.layers[layer];
    let expected = prefill_ref(spec, &module.span, n_tokens, d, &q, &k, &v, &row_start);
    PrefillCase {
        name: format!("l{layer:02} prefill rows {row_lens:?} N={n_tokens}"),
        layer,
        n_tokens,
        row_start,
        q,
        k,
        v,
        expected,
    }
}

/// A decode case of layer `layer` (index into `module.layers`; panics past them): one row
/// per `row_pos` entry whose tokens `0..=row_pos[b]` are written into the cache laid out at
/// N = `n_tokens`, unwritten slots filled with values up to ±50 so a kernel that reads
/// them fails; Q in ±2, K and V in ±1 from `seed`, rounded to the storage type;
/// `expected` from the CPU reference (`reference::decode_ref`).
pub fn decode_case(
    module: &KernelModule,
    layer: usize,
    row_pos: &[u32],
    n_tokens: u32,
    seed: u64,
) -> DecodeCase {
    let s = &module.shape;
    let (hq, hkv, d) = (s.q_heads as usize, s.kv_heads as usize, s.head_dim as usize);
    let mut rng = StdRng::seed_from_u64(seed);
    let spec = &module.layers[layer];
    let layout = CacheLayout::new(spec, &module.span, n_tokens);
    let rows = row_pos.len();
    let slots = layout.row_slots as usize;
    // Unwritten slots hold garbage, never zeros: a kernel that reads them must fail.
    let mut k_cache = random_vec(&mut rng, rows * slots * d, 50.0, module.storage);
    let mut v_cache = random_vec(&mut rng, rows * slots * d, 50.0, module.storage);
    for (b, &t) in row_pos.iter().enumerate() {
        let n = t as usize + 1;
        let kt = random_vec(&mut rng, n * hkv * d, 1.0, module.storage);
        let vt = random_vec(&mut rng, n * hkv * d, 1.0, module.storage);
        fill_cache_row(&layout, d, b, &kt, &mut k_cache);
        fill_cache_row(&layout, d, b, &vt, &mut v_cache);
    }
    let q = random_vec(&mut rng, rows * hq * d, 2.0, module.storage);
    let expected = decode_ref(
        spec,
        &module.span,
        &layout,
        d,
        &q,
        &k_cache,
        &v_cache,
        row_pos,
    );
    DecodeCase {
        name: format!("l{layer:02} decode rows at {row_pos:?} N={n_tokens}"),
        layer,
        layout,
        row_pos: row_pos.to_vec(),
        q,
        k_cache,
        v_cache,
        expected,
    }
}

/// The standard cases for every layer of a module: single and ragged batches, lengths
/// that are not multiples of any tile, N far above and just at the prompt length,
/// decode before the ring fills, right at the wrap and long after it.
pub fn standard_cases(module: &KernelModule, seed: u64) -> (Vec<PrefillCase>, Vec<DecodeCase>) {
    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    for layer in 0..module.layers.len() {
        let (p, d) = standard_layer_cases(module, layer, seed);
        prefill.extend(p);
        decode.extend(d);
    }
    (prefill, decode)
}

/// [`standard_cases`] of one layer (independent of the others, so layers can be built
/// in parallel).
pub fn standard_layer_cases(
    module: &KernelModule,
    layer: usize,
    seed: u64,
) -> (Vec<PrefillCase>, Vec<DecodeCase>) {
    (
        standard_prefill_layer_cases(module, layer, seed),
        standard_decode_layer_cases(module, layer, seed),
    )
}

/// The prefill half of [`standard_cases`] (the same cases, seeds and order), for a test
/// that runs only prefill kernels: the f64 reference of the decode half is not computed.
pub fn standard_prefill_cases(module: &KernelModule, seed: u64) -> Vec<PrefillCase> {
    (0..module.layers.len())
        .flat_map(|layer| standard_prefill_layer_cases(module, layer, seed))
        .collect()
}

/// The decode half of [`standard_cases`] (the same cases, seeds and order), for a test
/// that runs only decode kernels: the prefill half's reference, O(prompt × span) per
/// head and most of the cost, is not computed.
pub fn standard_decode_cases(module: &KernelModule, seed: u64) -> Vec<DecodeCase> {
    (0..module.layers.len())
        .flat_map(|layer| standard_decode_layer_cases(module, layer, seed))
        .collect()
}

/// Seed of one layer's cases: the layer in the high word, so layers differ.
fn layer_seed(seed: u64, layer: usize) -> u64 {
    seed ^ ((layer as u64) << 32)
}

/// The prefill cases of one layer: single and ragged batches with lengths that are not
/// multiples of any tile, N above the prompt by 16 new tokens, and N exactly the prompt.
pub fn standard_prefill_layer_cases(
    module: &KernelModule,
    layer: usize,
    seed: u64,
) -> Vec<PrefillCase> {
    let max_new = 16;
    let seed = layer_seed(seed, layer);
    let mut prefill = Vec::new();
    for (i, lens) in [vec![1], vec![19], vec![37, 5, 64], vec![130, 1, 77]]
        .into_iter()
        .enumerate()
    {
        let max = lens.iter().copied().max().unwrap_or(1);
        prefill.push(prefill_case(
            module,
            layer,
            &lens,
            max + max_new,
            seed + i as u64,
        ));
    }
    // N exactly the prompt (no new tokens): spans at their smallest.
    prefill.push(prefill_case(module, layer, &[99], 99, seed + 10));
    prefill
}

/// The decode cases of one layer: rows before the ring fills, right at the wrap and long
/// after it.
pub fn standard_decode_layer_cases(
    module: &KernelModule,
    layer: usize,
    seed: u64,
) -> Vec<DecodeCase> {
    let seed = layer_seed(seed, layer);
    [
        (vec![0], 40),
        (vec![3, 17, 39], 40),
        (vec![250, 7, 129], 260),
        // generation far past N: the ring has wrapped many times
        (vec![700, 513], 200),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (pos, n))| decode_case(module, layer, &pos, n, seed + 100 + i as u64))
    .collect()
}

/// Largest absolute error of `actual` against `expected`, and where it is.
pub fn max_abs_error(actual: &[f32], expected: &[f32]) -> (f32, usize) {
    let mut worst = (0f32, 0usize);
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let err = if a.is_nan() {
            f32::INFINITY
        } else {
            (a - e).abs()
        };
        if err > worst.0 {
            worst = (err, i);
        }
    }
    if actual.len() != expected.len() {
        worst = (f32::INFINITY, actual.len().min(expected.len()));
    }
    worst
}

/// Tolerance (absolute; outputs are convex combinations of values in [-1, 1], so this is
/// also the error relative to the output scale) for a storage type: f32 1e-4, f16 2e-3
/// (the kernel rounds its output, and in the tensor-core decode the softmax weights, to
/// f16: half an ulp is 4.9e-4 below 1), bf16 3e-3 (half an ulp below 1 is 1.95e-3;
/// kernels.md measured ~2.5e-3 relative against f64 for a bf16 flash decode).
pub fn tolerance(storage: StorageType) -> f32 {
    match storage {
        StorageType::F32 => 1e-4,
        StorageType::F16 => 2e-3,
        StorageType::Bf16 => 3e-3,
    }
}

/// Checks a kernel output against a case's expectation; the error names the case,
/// the element as (token or row, q_head, dim), and the values.
pub fn check_output(
    case_name: &str,
    q_heads: usize,
    head_dim: usize,
    actual: &[f32],
    expected: &[f32],
    tol: f32,
) -> Result<f32, String> {
    let (err, i) = max_abs_error(actual, expected);
    if err <= tol {
        return Ok(err);
    }
    let (tok, h, dim) = (
        i / (q_heads * head_dim),
        (i / head_dim) % q_heads,
        i % head_dim,
    );
    Err(format!(
        "{case_name}: max |error| {err:e} > {tol:e} at (token/row {tok}, q_head {h}, dim {dim}): got {:?}, expected {:?}",
        actual.get(i),
        expected.get(i)
    ))
}
