//! Quantized matrices as the wgpu engine keeps them on the device: the codes of a GGUF
//! quantization and, per group of weights, the f32 scale and offset that turn a code into
//! its weight.
//!
//! Why not GGUF's own blocks: Q6_K's 210-byte and Q8_0's 34-byte blocks do not fall on
//! 4-byte words, which is all WGSL can load, and each type would need its own decoder in
//! every product. One layout serves them all: weight `e` of a row-major `[rows, cols]`
//! matrix is `scale[g] · code[e] + offset[g]` with `g = e / group`, codes of 4 or 8 bits
//! packed little-end first into u32 words. Every supported type converts exactly: a
//! group's scale and offset are products of the block's f16 scales and small integers,
//! which f32 holds without rounding (Q4_0: `d·(q − 8)` is scale `d`, offset `−8d`; Q4_1:
//! `d·q + m`; Q8_0: `d·q` with `q + 128` as the code; Q4_K: scale `d·sc`, offset
//! `−dmin·m` a sub-block of 32; Q6_K: scale `d·sc`, offset `−32·d·sc` a sub-block of 16).
//! The 5-bit types take 8-bit codes (a code never spans two words): Q5_0 `d·(q − 16)`,
//! Q5_1 `d·q + m`, Q5_K as Q4_K with the fifth bit from `qh`.
//! Bytes a weight: 0.75 for the 4-bit types (against Q4_K's 0.5625 in the file and f16's
//! 2), 1.25 for Q8_0 and the 5-bit types, 1.5 for Q6_K.
//!
//! Layouts of the GGUF blocks: llama.cpp's `ggml-common.h` (`block_q4_0`, `block_q4_1`,
//! `block_q8_0`) and [`super::quant`] for the K-quants.

#![warn(missing_docs)]

use super::quant::{self, Q4_K_BLOCK_BYTES, Q6_K_BLOCK_BYTES, QK_K};
use candle_core::quantized::GgmlDType;

/// Bytes of a Q5_K block: `d`, `dmin` (f16), 12 bytes of 6-bit scales and mins, 32 of
/// fifth bits (`qh`), 128 of low nibbles (llama.cpp's `block_q5_K`).
const Q5_K_BLOCK_BYTES: usize = 176;

/// The GGUF types [`QuantType`] takes, as messages name them.
pub const KEPT_TYPES: &str = "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K or Q6_K";

/// A GGUF quantization this layout takes, with its block geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantType {
    /// 32 weights in 18 bytes: `d: f16, qs: [u8; 16]`, weight `d·(q − 8)`.
    Q4_0,
    /// 32 weights in 20 bytes: `d: f16, m: f16, qs: [u8; 16]`, weight `d·q + m`.
    Q4_1,
    /// 32 weights in 34 bytes: `d: f16, qs: [i8; 32]`, weight `d·q`.
    Q8_0,
    /// 256 weights in 144 bytes ([`super::quant`]).
    Q4K,
    /// 256 weights in 210 bytes ([`super::quant`]).
    Q6K,
    /// 32 weights in 22 bytes: `d: f16, qh: u32, qs: [u8; 16]`, weight `d·(q − 16)` with
    /// q's fifth bit from `qh` (llama.cpp's fallback for Q4_K_M rows that are not whole
    /// 256-weight blocks, such as SmolLM2's 576).
    Q5_0,
    /// 32 weights in 24 bytes: `d: f16, m: f16, qh: u32, qs: [u8; 16]`, weight `d·q + m`.
    Q5_1,
    /// 256 weights in 176 bytes: Q4_K's scales with a fifth bit a weight (Q5_K_M files).
    Q5K,
}

impl QuantType {
    /// (weights, bytes) of one block.
    pub fn block(self) -> (usize, usize) {
        match self {
            QuantType::Q4_0 => (32, 18),
            QuantType::Q4_1 => (32, 20),
            QuantType::Q8_0 => (32, 34),
            QuantType::Q4K => (QK_K, Q4_K_BLOCK_BYTES),
            QuantType::Q6K => (QK_K, Q6_K_BLOCK_BYTES),
            QuantType::Q5_0 => (32, 22),
            QuantType::Q5_1 => (32, 24),
            QuantType::Q5K => (QK_K, Q5_K_BLOCK_BYTES),
        }
    }

    /// The type of a GGUF tensor of ggml type `t`, where this layout takes it.
    pub fn from_ggml(t: GgmlDType) -> Option<QuantType> {
        Some(match t {
            GgmlDType::Q4_0 => QuantType::Q4_0,
            GgmlDType::Q4_1 => QuantType::Q4_1,
            GgmlDType::Q8_0 => QuantType::Q8_0,
            GgmlDType::Q4K => QuantType::Q4K,
            GgmlDType::Q6K => QuantType::Q6K,
            GgmlDType::Q5_0 => QuantType::Q5_0,
            GgmlDType::Q5_1 => QuantType::Q5_1,
            GgmlDType::Q5K => QuantType::Q5K,
            _ => return None,
        })
    }

    /// The (bits, group) its codes take in a [`QuantMatrix`].
    pub fn layout(self) -> (u32, usize) {
        match self {
            QuantType::Q4_0 | QuantType::Q4_1 | QuantType::Q4K => (4, 32),
            QuantType::Q8_0 | QuantType::Q5_0 | QuantType::Q5_1 | QuantType::Q5K => (8, 32),
            QuantType::Q6K => (8, 16),
        }
    }
}

/// A row-major `[rows, cols]` matrix as codes plus a scale and offset per group (module
/// doc). `cols` is a multiple of `group`, so a group never spans two rows and a row's
/// codes start on a word.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantMatrix {
    /// Output features.
    pub rows: usize,
    /// Input features (K), a multiple of [`Self::group`].
    pub cols: usize,
    /// Bits a code: 4 or 8.
    pub bits: u32,
    /// Weights a group: 16 or 32.
    pub group: usize,
    /// `rows · cols · bits / 32` words; weight `e`'s code is bits
    /// `(e·bits) % 32 .. + bits` of word `e·bits / 32`.
    pub codes: Vec<u32>,
    /// `2 · rows · cols / group` values: group `g`'s scale at `2g`, offset at `2g + 1`.
    pub params: Vec<f32>,
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    half::f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Builds codes and params from one sink per group: `push(code)` per weight in order.
struct Builder {
    bits: u32,
    codes: Vec<u32>,
    params: Vec<f32>,
    n: usize,
}

impl Builder {
    fn push(&mut self, code: u32) {
        let bit = self.n * self.bits as usize;
        if bit.is_multiple_of(32) {
            self.codes.push(0);
        }
        *self.codes.last_mut().expect("pushed above") |= code << (bit % 32);
        self.n += 1;
    }

    fn group(&mut self, scale: f32, offset: f32) {
        self.params.extend([scale, offset]);
    }
}

impl QuantMatrix {
    /// Converts the raw GGUF blocks of a `[rows, cols]` tensor of type `t` (blocks laid
    /// along each row, as GGUF stores them).
    ///
    /// # Errors
    /// `cols` not a whole number of `t`'s blocks, or `raw` not `rows · cols / block`
    /// blocks long (a message naming both sizes).
    pub fn from_gguf(t: QuantType, raw: &[u8], rows: usize, cols: usize) -> Result<Self, String> {
        let (block, block_bytes) = t.block();
        if cols == 0 || !cols.is_multiple_of(block) {
            return Err(format!(
                "rows of {cols} weights: {t:?} rows must be whole blocks of {block}"
            ));
        }
        let want = rows * cols / block * block_bytes;
        if raw.len() != want {
            return Err(format!(
                "{} bytes of {t:?} data where [{rows}, {cols}] needs {want}",
                raw.len()
            ));
        }
        let (bits, group) = t.layout();
        let mut b = Builder {
            bits,
            codes: Vec::with_capacity(rows * cols * bits as usize / 32),
            params: Vec::with_capacity(2 * rows * cols / group),
            n: 0,
        };
        for x in raw.chunks_exact(block_bytes) {
            match t {
                QuantType::Q4_0 | QuantType::Q4_1 => {
                    let d = f16_at(x, 0);
                    let (offset, qs) = match t {
                        QuantType::Q4_0 => (-8.0 * d, &x[2..18]),
                        _ => (f16_at(x, 2), &x[4..20]),
                    };
                    b.group(d, offset);
                    qs.iter().for_each(|&q| b.push(u32::from(q & 0x0F)));
                    qs.iter().for_each(|&q| b.push(u32::from(q >> 4)));
                }
                QuantType::Q8_0 => {
                    let d = f16_at(x, 0);
                    b.group(d, -128.0 * d);
                    x[2..34]
                        .iter()
                        .for_each(|&q| b.push(u32::from((q as i8 as i32 + 128) as u8)));
                }
                QuantType::Q5_0 | QuantType::Q5_1 => {
                    let d = f16_at(x, 0);
                    let (offset, at) = match t {
                        QuantType::Q5_0 => (-16.0 * d, 2),
                        _ => (f16_at(x, 2), 4),
                    };
                    let qh = u32::from_le_bytes(x[at..at + 4].try_into().expect("4 bytes"));
                    let qs = &x[at + 4..at + 20];
                    b.group(d, offset);
                    // Weight j: low nibble of qs[j], fifth bit qh bit j; weight j + 16:
                    // high nibble, qh bit j + 16 (ggml's dequantize_row_q5_0).
                    for (j, &q) in qs.iter().enumerate() {
                        b.push(u32::from(q & 0x0F) | ((qh >> j) & 1) << 4);
                    }
                    for (j, &q) in qs.iter().enumerate() {
                        b.push(u32::from(q >> 4) | ((qh >> (j + 16)) & 1) << 4);
                    }
                }
                QuantType::Q5K => {
                    let (d, dmin) = (f16_at(x, 0), f16_at(x, 2));
                    let scales: &[u8; 12] = x[4..16].try_into().expect("12 bytes");
                    let qh = &x[16..48];
                    for i in 0..4 {
                        let q = &x[48 + 32 * i..80 + 32 * i];
                        for (j, shift) in [(2 * i, 0), (2 * i + 1, 4)] {
                            let (sc, m) = quant::q4_k_scale_min(j, scales);
                            b.group(d * f32::from(sc), -(dmin * f32::from(m)));
                            for (&c, &h) in q.iter().zip(qh) {
                                let high = u32::from((h >> j) & 1) << 4;
                                b.push(u32::from((c >> shift) & 0x0F) | high);
                            }
                        }
                    }
                }
                QuantType::Q4K => {
                    let (d, dmin) = (f16_at(x, 0), f16_at(x, 2));
                    let scales: &[u8; 12] = x[4..16].try_into().expect("12 bytes");
                    for i in 0..4 {
                        let q = &x[16 + 32 * i..48 + 32 * i];
                        for (j, shift) in [(2 * i, 0), (2 * i + 1, 4)] {
                            let (sc, m) = quant::q4_k_scale_min(j, scales);
                            b.group(d * f32::from(sc), -(dmin * f32::from(m)));
                            q.iter()
                                .for_each(|&c| b.push(u32::from((c >> shift) & 0x0F)));
                        }
                    }
                }
                QuantType::Q6K => {
                    let d = f16_at(x, 208);
                    // The decoder's order: within each half of 128, weight l + 32k for
                    // l in 0..32 and k in 0..4; groups of 16 are (k, l / 16).
                    let mut codes = [0u8; QK_K];
                    for half in 0..2 {
                        let ql = &x[64 * half..64 * half + 64];
                        let qh = &x[128 + 32 * half..160 + 32 * half];
                        for l in 0..32 {
                            let c = &mut codes[128 * half..];
                            c[l] = (ql[l] & 0x0F) | ((qh[l] & 3) << 4);
                            c[l + 32] = (ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4);
                            c[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                            c[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
                        }
                    }
                    for (gi, g) in codes.chunks_exact(16).enumerate() {
                        // Group gi covers weights 16gi..16gi+16: half gi / 8, k = (gi % 8)
                        // / 2, l / 16 = gi % 2, whose scale is scales[8·half + l/16 + 2k].
                        let (half, k, sub) = (gi / 8, (gi % 8) / 2, gi % 2);
                        let sc = f32::from(x[192 + 8 * half + sub + 2 * k] as i8);
                        let scale = d * sc;
                        b.group(scale, -32.0 * scale);
                        g.iter().for_each(|&q| b.push(u32::from(q)));
                    }
                }
            }
        }
        Ok(QuantMatrix {
            rows,
            cols,
            bits,
            group,
            codes: b.codes,
            params: b.params,
        })
    }

    /// Code of weight `e` (row-major index).
    pub fn code(&self, e: usize) -> u32 {
        let bit = e * self.bits as usize;
        (self.codes[bit / 32] >> (bit % 32)) & ((1u32 << self.bits) - 1)
    }

    /// Weight `e` (row-major index): `scale · code + offset` in f32, as the shaders
    /// compute it (`fma`; an exact product for every type but Q6_K's, whose 1-ulp
    /// difference from its decoder is below f16's rounding by 2^13).
    pub fn value(&self, e: usize) -> f32 {
        let g = e / self.group;
        self.params[2 * g].mul_add(self.code(e) as f32, self.params[2 * g + 1])
    }

    /// Every weight in f32, row-major `[rows, cols]`: the CPU reference of the shaders'
    /// decode.
    pub fn dequantize(&self) -> Vec<f32> {
        (0..self.rows * self.cols).map(|e| self.value(e)).collect()
    }

    /// Device bytes: codes plus params.
    pub fn bytes(&self) -> u64 {
        4 * (self.codes.len() + self.params.len()) as u64
    }

    /// The first non-finite scale or offset, as (row, group within the row).
    pub fn non_finite(&self) -> Option<(usize, usize)> {
        let per_row = self.cols / self.group;
        self.params
            .iter()
            .position(|v| !v.is_finite())
            .map(|i| (i / 2 / per_row, i / 2 % per_row))
    }

    /// The same weights with `bits` a code and `group` weights a group (`bits` ≥ and
    /// `group` ≤ this matrix's, `group` dividing it): how matrices of two types are stacked
    /// into one product (Q4_K queries with Q6_K values).
    pub fn widened(&self, bits: u32, group: usize) -> QuantMatrix {
        assert!(bits >= self.bits && self.group.is_multiple_of(group));
        if (bits, group) == (self.bits, self.group) {
            return self.clone();
        }
        let n = self.rows * self.cols;
        let mut b = Builder {
            bits,
            codes: Vec::with_capacity(n * bits as usize / 32),
            params: Vec::with_capacity(2 * n / group),
            n: 0,
        };
        for e in 0..n {
            if e.is_multiple_of(group) {
                let g = e / self.group;
                b.group(self.params[2 * g], self.params[2 * g + 1]);
            }
            b.push(self.code(e));
        }
        QuantMatrix {
            rows: self.rows,
            cols: self.cols,
            bits,
            group,
            codes: b.codes,
            params: b.params,
        }
    }

    /// `parts` stacked by rows (same `cols`), widened to the widest codes and the smallest
    /// group among them. `None` for no parts or different `cols`.
    pub fn stack(parts: &[QuantMatrix]) -> Option<QuantMatrix> {
        let first = parts.first()?;
        if parts.iter().any(|p| p.cols != first.cols) {
            return None;
        }
        let bits = parts.iter().map(|p| p.bits).max()?;
        let group = parts.iter().map(|p| p.group).min()?;
        if parts.iter().any(|p| !p.group.is_multiple_of(group)) {
            return None;
        }
        let mut out = QuantMatrix {
            rows: 0,
            cols: first.cols,
            bits,
            group,
            codes: Vec::new(),
            params: Vec::new(),
        };
        for p in parts {
            let w = p.widened(bits, group);
            out.rows += w.rows;
            out.codes.extend(w.codes);
            out.params.extend(w.params);
        }
        Some(out)
    }

    /// Rows `[row0, row0 + n)` as a matrix of their own (a part of a matrix split across
    /// storage bindings).
    pub fn rows_range(&self, row0: usize, n: usize) -> QuantMatrix {
        let words = self.cols * self.bits as usize / 32;
        let groups = self.cols / self.group;
        QuantMatrix {
            rows: n,
            cols: self.cols,
            bits: self.bits,
            group: self.group,
            codes: self.codes[row0 * words..(row0 + n) * words].to_vec(),
            params: self.params[2 * row0 * groups..2 * (row0 + n) * groups].to_vec(),
        }
    }

    /// The matrix with row `r` taken from row `from(r)` (a permutation): GGUF's RoPE row
    /// order of the Q and K projections undone as [`super::weights::unpermute_rope_rows`]
    /// undoes it on f32 rows.
    pub fn reorder_rows(&self, from: impl Fn(usize) -> usize) -> QuantMatrix {
        let mut out = QuantMatrix {
            codes: Vec::with_capacity(self.codes.len()),
            params: Vec::with_capacity(self.params.len()),
            ..self.clone_shape()
        };
        for r in 0..self.rows {
            let row = self.rows_range(from(r), 1);
            out.codes.extend(row.codes);
            out.params.extend(row.params);
        }
        out
    }

    fn clone_shape(&self) -> QuantMatrix {
        QuantMatrix {
            rows: self.rows,
            cols: self.cols,
            bits: self.bits,
            group: self.group,
            codes: Vec::new(),
            params: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16b(x: f32) -> [u8; 2] {
        half::f16::from_f32(x).to_le_bytes()
    }

    /// Random blocks of `t` (scales drawn as f16 bit patterns of moderate size).
    fn random_blocks(t: QuantType, blocks: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as u32
        };
        let (_, bytes) = t.block();
        let mut raw = Vec::new();
        for _ in 0..blocks {
            let mut b: Vec<u8> = (0..bytes).map(|_| next() as u8).collect();
            let scale = |v: u32| f16b(0.001 + (v % 1000) as f32 * 1e-4);
            match t {
                QuantType::Q4_0 | QuantType::Q8_0 | QuantType::Q5_0 => {
                    b[0..2].copy_from_slice(&scale(next()))
                }
                QuantType::Q4_1 | QuantType::Q4K | QuantType::Q5_1 | QuantType::Q5K => {
                    b[0..2].copy_from_slice(&scale(next()));
                    b[2..4].copy_from_slice(&scale(next()));
                }
                QuantType::Q6K => b[208..210].copy_from_slice(&scale(next())),
            }
            raw.extend(b);
        }
        raw
    }

    /// What each type decodes to, written from the block layouts independently of
    /// `from_gguf` (the K-quants through `super::quant`'s decoders).
    fn reference(t: QuantType, raw: &[u8]) -> Vec<f32> {
        let (_, bytes) = t.block();
        match t {
            QuantType::Q4K => return quant::dequantize_q4_k(raw).unwrap(),
            QuantType::Q6K => return quant::dequantize_q6_k(raw).unwrap(),
            QuantType::Q5_0 | QuantType::Q5_1 | QuantType::Q5K => return candle_decode(t, raw),
            _ => {}
        }
        let mut out = Vec::new();
        for x in raw.chunks_exact(bytes) {
            let d = f16_at(x, 0);
            match t {
                QuantType::Q4_0 => {
                    let mut y = [0f32; 32];
                    for j in 0..16 {
                        y[j] = (i32::from(x[2 + j] & 0x0F) - 8) as f32 * d;
                        y[j + 16] = (i32::from(x[2 + j] >> 4) - 8) as f32 * d;
                    }
                    out.extend(y);
                }
                QuantType::Q4_1 => {
                    let m = f16_at(x, 2);
                    let mut y = [0f32; 32];
                    for j in 0..16 {
                        y[j] = f32::from(x[4 + j] & 0x0F) * d + m;
                        y[j + 16] = f32::from(x[4 + j] >> 4) * d + m;
                    }
                    out.extend(y);
                }
                QuantType::Q8_0 => out.extend(x[2..34].iter().map(|&q| f32::from(q as i8) * d)),
                _ => unreachable!(),
            }
        }
        out
    }

    /// The 5-bit types through candle's decoders (ggml's `dequantize_row_q5_*`).
    fn candle_decode(t: QuantType, raw: &[u8]) -> Vec<f32> {
        use candle_core::quantized::ggml_file::qtensor_from_ggml;
        let dt = match t {
            QuantType::Q5_0 => GgmlDType::Q5_0,
            QuantType::Q5_1 => GgmlDType::Q5_1,
            _ => GgmlDType::Q5K,
        };
        let (block, bytes) = t.block();
        let n = raw.len() / bytes * block;
        let q = qtensor_from_ggml(dt, raw, vec![n], &candle_core::Device::Cpu).unwrap();
        let x = q.dequantize(&candle_core::Device::Cpu).unwrap();
        x.to_vec1::<f32>().unwrap()
    }

    const ALL: [QuantType; 8] = [
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q8_0,
        QuantType::Q4K,
        QuantType::Q6K,
        QuantType::Q5_0,
        QuantType::Q5_1,
        QuantType::Q5K,
    ];

    #[test]
    fn every_type_converts_to_its_decoders_values() {
        for t in ALL {
            let (block, _) = t.block();
            let (rows, cols) = (3, 2 * block);
            let raw = random_blocks(t, rows * 2, 7);
            let m = QuantMatrix::from_gguf(t, &raw, rows, cols).unwrap();
            let want = reference(t, &raw);
            let got = m.dequantize();
            assert_eq!(got.len(), want.len());
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                // Exact for all but Q6_K, whose product may round once more, and the
                // 5-bit types, whose decoders in candle round `d·q` before adding `m` where
                // the layout's fused multiply-add rounds once (1 ulp).
                let tol = if matches!(t, QuantType::Q6K | QuantType::Q5_1 | QuantType::Q5K) {
                    w.abs() * 2e-7
                } else {
                    0.0
                };
                assert!((g - w).abs() <= tol, "{t:?} weight {i}: {g} against {w}");
            }
            assert_eq!(m.bytes() as usize, 4 * (m.codes.len() + m.params.len()));
        }
    }

    #[test]
    fn stacking_widens_and_keeps_every_weight() {
        let a =
            QuantMatrix::from_gguf(QuantType::Q4K, &random_blocks(QuantType::Q4K, 2, 1), 2, 256)
                .unwrap();
        let b =
            QuantMatrix::from_gguf(QuantType::Q6K, &random_blocks(QuantType::Q6K, 1, 2), 1, 256)
                .unwrap();
        let s = QuantMatrix::stack(&[a.clone(), b.clone()]).unwrap();
        assert_eq!((s.rows, s.bits, s.group), (3, 8, 16));
        let mut want = a.dequantize();
        want.extend(b.dequantize());
        assert_eq!(s.dequantize(), want);
        // Rows out and back.
        assert_eq!(s.rows_range(2, 1).dequantize(), b.dequantize());
        let r = s.reorder_rows(|r| 2 - r);
        assert_eq!(r.rows_range(0, 1), s.rows_range(2, 1));
    }

    #[test]
    fn bad_sizes_are_errors_naming_them() {
        let e = QuantMatrix::from_gguf(QuantType::Q4K, &[0; 144], 1, 128).unwrap_err();
        assert!(e.contains("128") && e.contains("256"), "{e}");
        let e = QuantMatrix::from_gguf(QuantType::Q8_0, &[0; 33], 1, 32).unwrap_err();
        assert!(e.contains("33") && e.contains("34"), "{e}");
    }

    #[test]
    fn non_finite_scales_are_found() {
        let mut raw = random_blocks(QuantType::Q4_0, 4, 3);
        raw[18 * 3..18 * 3 + 2].copy_from_slice(&f16b(f32::INFINITY));
        let m = QuantMatrix::from_gguf(QuantType::Q4_0, &raw, 2, 64).unwrap();
        assert_eq!(m.non_finite(), Some((1, 1)));
    }
}
