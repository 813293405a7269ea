//! Q4_K and Q6_K, the most common GGUF quantizations: moa's own decoders
//! (`model::quant`, written from ggml's block layout) against candle's dequantization, on
//! random weights quantized by candle, directly and through a GGUF file.

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use moa::model::gguf::GgufFile;
use moa::model::quant::{dequantize_q4_k, dequantize_q6_k, QK_K};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `[rows, cols]` weights: normal-ish values of varied scale per row, some rows all
/// positive or all negative (the mins and signed scales matter), a few outliers.
fn weights(rows: usize, cols: usize, seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut data = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let scale = 0.01 * (1 + r % 7) as f32;
        let shift = match r % 3 {
            0 => 0.0,
            1 => 3.0 * scale,
            _ => -3.0 * scale,
        };
        for c in 0..cols {
            let u: f32 = rng.random::<f32>() + rng.random::<f32>() + rng.random::<f32>() - 1.5;
            let outlier = if c % 97 == 0 { 8.0 } else { 1.0 };
            data.push(shift + scale * u * outlier);
        }
    }
    Tensor::from_vec(data, (rows, cols), &Device::Cpu).unwrap()
}

fn candle_f32(q: &QTensor) -> Vec<f32> {
    q.dequantize(&Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn assert_same(ours: &[f32], theirs: &[f32], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!(
            (a - b).abs() <= 1e-6 * b.abs().max(1e-3),
            "{what}: weight {i}: ours {a}, candle {b}"
        );
    }
}

#[test]
fn k_quant_decoders_match_candle_on_random_weights() {
    for (dtype, decode) in [
        (
            GgmlDType::Q4K,
            dequantize_q4_k as fn(&[u8]) -> Result<Vec<f32>, String>,
        ),
        (GgmlDType::Q6K, dequantize_q6_k),
    ] {
        for seed in 0..3 {
            let x = weights(6, 4 * QK_K, seed);
            let q = QTensor::quantize(&x, dtype).unwrap();
            let raw = q.data().unwrap();
            let ours = decode(&raw).unwrap();
            let theirs = candle_f32(&q);
            assert_same(&ours, &theirs, &format!("{dtype:?} seed {seed}"));
            // The quantization is close to the input (a sanity check of the test itself).
            let src: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
            // NaN-aware (a fold with f32::max alone skips NaN).
            let err = moa::runtime::cases::max_abs_error(&ours, &src).0;
            assert!(err < 0.05, "{dtype:?}: max |x - dequant| {err}");
        }
    }
}

#[test]
fn k_quant_tensors_load_from_gguf_through_moas_decoders() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("k_quants");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("k.gguf");
    let q4 = QTensor::quantize(&weights(3, 2 * QK_K, 7), GgmlDType::Q4K).unwrap();
    let q6 = QTensor::quantize(&weights(5, 3 * QK_K, 8), GgmlDType::Q6K).unwrap();
    let mut f = std::fs::File::create(&path).unwrap();
    gguf_file::write(&mut f, &[], &[("a.weight", &q4), ("b.weight", &q6)]).unwrap();
    drop(f);
    let mut g = GgufFile::open(&path).unwrap();
    let a = g.read_f32("a.weight", &[3, 2 * QK_K]).unwrap().unwrap();
    let b = g.read_f32("b.weight", &[5, 3 * QK_K]).unwrap().unwrap();
    assert_eq!(a.shape, vec![3, 2 * QK_K]);
    assert_same(&a.data, &candle_f32(&q4), "Q4_K from GGUF");
    assert_same(&b.data, &candle_f32(&q6), "Q6_K from GGUF");
    // A wrong expected shape is still refused before any data is read.
    assert!(g.read_f32("b.weight", &[5, QK_K]).is_err());
}
