//! CPU decoders of the two most common GGUF quantizations, Q4_K and Q6_K (llama.cpp's
//! "K-quants"), written from ggml's block layout: super-blocks of `QK_K` = 256 weights,
//! little-endian, laid out one after another along each row.
//!
//! Q4_K (144 bytes per 256 weights, 4.5 bits each):
//! `d: f16, dmin: f16, scales: [u8; 12], qs: [u8; 128]`. The block is 8 sub-blocks of 32
//! weights, each with a 6-bit scale `sc` and a 6-bit min `m` packed into `scales`
//! ([`q4_k_scale_min`]); weight `y = d·sc·q − dmin·m` with `q` a 4-bit code. The codes of
//! sub-blocks `2i` and `2i+1` share the 32 bytes `qs[32i..32i+32]`: low nibbles, then high.
//!
//! Q6_K (210 bytes per 256 weights, 6.5625 bits each):
//! `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16`. 16 sub-blocks of 16 weights with
//! a signed 8-bit scale each; weight `y = d·scale·(q − 32)` with `q` a 6-bit code whose low
//! 4 bits come from `ql` and high 2 bits from `qh` ([`dequantize_q6_k`] gives the order).
//!
//! The loader dequantizes to f32 on the host; the engine then stores weights in its
//! storage type (f16 or f32, DESIGN.md §7).

#![warn(missing_docs)]

/// Weights per K-quant super-block.
pub const QK_K: usize = 256;
/// Bytes of one Q4_K super-block.
pub const Q4_K_BLOCK_BYTES: usize = 144;
/// Bytes of one Q6_K super-block.
pub const Q6_K_BLOCK_BYTES: usize = 210;

/// A K-quant decoder: raw super-blocks to f32 weights (errors: partial blocks).
pub type Decoder = fn(&[u8]) -> Result<Vec<f32>, String>;

fn f16_at(b: &[u8], i: usize) -> f32 {
    half::f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

fn whole_blocks(what: &str, bytes: &[u8], block: usize) -> Result<usize, String> {
    if !bytes.len().is_multiple_of(block) {
        return Err(format!(
            "{what} data of {} bytes is not a whole number of {block}-byte super-blocks",
            bytes.len()
        ));
    }
    Ok(bytes.len() / block)
}

/// The 6-bit scale and min of sub-block `j` (0..8) from Q4_K's 12 packed bytes: sub-blocks
/// 0–3 keep theirs in the low 6 bits of bytes `j` (scale) and `j + 4` (min); sub-blocks 4–7
/// keep their low 4 bits in the nibbles of byte `j + 4` and their high 2 bits in the top
/// bits of bytes `j − 4` (scale) and `j` (min).
pub fn q4_k_scale_min(j: usize, scales: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 63, scales[j + 4] & 63)
    } else {
        (
            (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4),
            (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4),
        )
    }
}

/// Decodes Q4_K super-blocks to f32, 256 weights per 144 bytes. Errors: a length that is
/// not a whole number of blocks.
pub fn dequantize_q4_k(bytes: &[u8]) -> Result<Vec<f32>, String> {
    let n = whole_blocks("Q4_K", bytes, Q4_K_BLOCK_BYTES)?;
    let mut out = Vec::with_capacity(n * QK_K);
    for b in bytes.chunks_exact(Q4_K_BLOCK_BYTES) {
        let d = f16_at(b, 0);
        let dmin = f16_at(b, 2);
        let scales: &[u8; 12] = b[4..16].try_into().expect("12 bytes");
        let qs = &b[16..144];
        for i in 0..4 {
            let (sc0, m0) = q4_k_scale_min(2 * i, scales);
            let (sc1, m1) = q4_k_scale_min(2 * i + 1, scales);
            let (d0, min0) = (d * f32::from(sc0), dmin * f32::from(m0));
            let (d1, min1) = (d * f32::from(sc1), dmin * f32::from(m1));
            let q = &qs[32 * i..32 * i + 32];
            out.extend(q.iter().map(|&x| d0 * f32::from(x & 0x0F) - min0));
            out.extend(q.iter().map(|&x| d1 * f32::from(x >> 4) - min1));
        }
    }
    Ok(out)
}

/// Decodes Q6_K super-blocks to f32, 256 weights per 210 bytes. Each half of 128 weights
/// uses 64 bytes of `ql`, 32 of `qh` and 8 scales; within a half, weight `l + 32·k`
/// (`l` in 0..32, `k` in 0..4) takes its low nibble from `ql[l]` (k = 0, 2: low, high
/// nibble) or `ql[l + 32]` (k = 1, 3), its high 2 bits from bits `2k..2k+2` of `qh[l]`, and
/// the scale `scales[l / 16 + 2k]`. Errors: a length that is not a whole number of blocks.
pub fn dequantize_q6_k(bytes: &[u8]) -> Result<Vec<f32>, String> {
    let n = whole_blocks("Q6_K", bytes, Q6_K_BLOCK_BYTES)?;
    let mut out = vec![0f32; n * QK_K];
    for (b, y) in bytes
        .chunks_exact(Q6_K_BLOCK_BYTES)
        .zip(out.chunks_exact_mut(QK_K))
    {
        let d = f16_at(b, 208);
        for half in 0..2 {
            let ql = &b[64 * half..64 * half + 64];
            let qh = &b[128 + 32 * half..128 + 32 * half + 32];
            let sc = &b[192 + 8 * half..192 + 8 * half + 8];
            let y = &mut y[128 * half..128 * half + 128];
            for l in 0..32 {
                let is = l / 16;
                let codes = [
                    (ql[l] & 0x0F) | ((qh[l] & 3) << 4),
                    (ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4),
                    (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                    (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
                ];
                for (k, &q) in codes.iter().enumerate() {
                    let scale = f32::from(sc[is + 2 * k] as i8);
                    y[l + 32 * k] = d * scale * f32::from(q as i8 - 32);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_bytes(x: f32) -> [u8; 2] {
        half::f16::from_f32(x).to_le_bytes()
    }

    /// A hand-built Q4_K block: d = 0.5, dmin = 0.25, sub-block j has scale 7j + 5 and min
    /// 9j (up to 54 and 63: sub-blocks 4–7 use all 6 bits of the split packing), every code
    /// of sub-block j equal to j.
    #[test]
    fn q4_k_block_decodes_to_hand_computed_values() {
        let mut b = vec![0u8; Q4_K_BLOCK_BYTES];
        b[0..2].copy_from_slice(&f16_bytes(0.5));
        b[2..4].copy_from_slice(&f16_bytes(0.25));
        let sc: Vec<u8> = (0..8).map(|j| 7 * j as u8 + 5).collect();
        let mn: Vec<u8> = (0..8).map(|j| 9 * j as u8).collect();
        let mut s = [0u8; 12];
        for j in 0..4 {
            s[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
            s[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
            s[j + 8] = (sc[j + 4] & 0x0F) | ((mn[j + 4] & 0x0F) << 4);
        }
        // The packing above puts sub-blocks 4–7 at bytes 8..12; q4_k_scale_min reads them
        // at `j + 4` for j in 4..8, i.e. the same bytes.
        b[4..16].copy_from_slice(&s);
        for j in 0..8 {
            assert_eq!(q4_k_scale_min(j, &s), (sc[j], mn[j]), "sub-block {j}");
        }
        for i in 0..4 {
            for l in 0..32 {
                b[16 + 32 * i + l] = (2 * i as u8) | ((2 * i as u8 + 1) << 4);
            }
        }
        let y = dequantize_q4_k(&b).unwrap();
        assert_eq!(y.len(), 256);
        for (k, &v) in y.iter().enumerate() {
            let j = k / 32;
            let want = 0.5 * f32::from(sc[j]) * j as f32 - 0.25 * f32::from(mn[j]);
            assert_eq!(v, want, "weight {k}");
        }
    }

    /// A hand-built Q6_K block: d = 0.125, scale of sub-block s = s − 8 (negative ones
    /// too), the 6-bit code of weight k equal to k % 64.
    #[test]
    fn q6_k_block_decodes_to_hand_computed_values() {
        let mut b = vec![0u8; Q6_K_BLOCK_BYTES];
        for s in 0..16 {
            b[192 + s] = (s as i8 - 8) as u8;
        }
        b[208..210].copy_from_slice(&f16_bytes(0.125));
        let code = |k: usize| (k % 64) as u8;
        for half in 0..2 {
            for l in 0..32 {
                let c: Vec<u8> = (0..4).map(|k| code(128 * half + l + 32 * k)).collect();
                b[64 * half + l] = (c[0] & 0x0F) | ((c[2] & 0x0F) << 4);
                b[64 * half + l + 32] = (c[1] & 0x0F) | ((c[3] & 0x0F) << 4);
                b[128 + 32 * half + l] =
                    (c[0] >> 4) | ((c[1] >> 4) << 2) | ((c[2] >> 4) << 4) | ((c[3] >> 4) << 6);
            }
        }
        let y = dequantize_q6_k(&b).unwrap();
        for (k, &v) in y.iter().enumerate() {
            let scale = (k / 16) as f32 - 8.0;
            let want = 0.125 * scale * (code(k) as f32 - 32.0);
            assert_eq!(v, want, "weight {k}");
        }
    }

    #[test]
    fn partial_blocks_are_errors() {
        let e = dequantize_q4_k(&[0; 145]).unwrap_err();
        assert!(e.contains("Q4_K") && e.contains("145"), "{e}");
        let e = dequantize_q6_k(&[0; 209]).unwrap_err();
        assert!(e.contains("Q6_K") && e.contains("209"), "{e}");
    }
}
