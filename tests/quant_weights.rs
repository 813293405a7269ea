//! Quantized weights kept on the device (`MOA_WGPU_QUANT_WEIGHTS`, `moa::model::QuantMatrix`):
//! the wgpu engine (lavapipe in CI) built from a GGUF stream of Q4_0, Q4_1 and Q8_0 layer
//! matrices (and Q5_0, Q5_1 in a mixed file), one type or several stacked into one product,
//! computes the CPU reference's
//! logits over the file's dequantized weights, in fewer device bytes, with every product
//! form that reads them (`linear_words.wgsl`, `matvec.wgsl`, `matvec_sg.wgsl`, and the tiled
//! products over `dequant.wgsl`'s f16 copy), over one binding and split by rows.
mod common;

use std::sync::OnceLock;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use common::tiny;
use moa::model::{CpuReference, Masking, Model, WeightStream};
use moa::runtime::engine::Engine;
use moa::runtime::wgpu::WgpuContext;
use moa::runtime::wgpu_engine::{WgpuEngine, WgpuEngineOptions};
use moa::ModelRef;

fn ctx() -> &'static WgpuContext {
    static CTX: OnceLock<WgpuContext> = OnceLock::new();
    CTX.get_or_init(|| {
        moa::runtime::wgpu::ensure_xdg_runtime_dir();
        WgpuContext::new().expect("a wgpu adapter (lavapipe in CI) is required")
    })
}

/// The tiny model as a GGUF file whose layer matrices are re-quantized: `types[i]` for
/// the i-th of attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down.
fn write(path: &std::path::Path, seed: u64, types: [GgmlDType; 7]) {
    write_ffn(path, seed, types, tiny::FFN)
}

/// [`write`] of a model with `ffn` MLP units.
fn write_ffn(path: &std::path::Path, seed: u64, types: [GgmlDType; 7], ffn: usize) {
    const NAMES: [&str; 7] = [
        "attn_q",
        "attn_k",
        "attn_v",
        "attn_output",
        "ffn_gate",
        "ffn_up",
        "ffn_down",
    ];
    tiny::tiny_ffn(seed, true, ffn).write_gguf(path, |_, tensors| {
        for (name, t) in tensors.iter_mut() {
            let Some(i) = NAMES
                .iter()
                .position(|n| name.ends_with(&format!(".{n}.weight")))
            else {
                continue;
            };
            let x = t.dequantize(&Device::Cpu).unwrap();
            let x = Tensor::from_vec(
                x.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                x.dims(),
                &Device::Cpu,
            )
            .unwrap();
            *t = QTensor::quantize(&x, types[i]).unwrap();
        }
    });
}

/// Prefill logits of two rows through `e`, and a decode step's.
fn logits(e: &WgpuEngine) -> Vec<Vec<f32>> {
    let prompts = vec![vec![5u32, 17, 3, 99, 42, 8, 61], vec![7u32, 1, 250]];
    let mut req = e.start(&[7, 3], 8, 0).unwrap();
    let mut out = e.prefill_logits(&mut req, &prompts).unwrap();
    out.extend(e.decode_logits(&mut req, &[11, 12]).unwrap());
    out
}

/// The same through the CPU reference over `model`'s (dequantized f32) weights.
fn reference(model: &Model) -> Vec<Vec<f32>> {
    let r = CpuReference::new(model.config.clone(), model.weights.clone()).unwrap();
    let mut out = Vec::new();
    let mut steps = Vec::new();
    for (prompt, next) in [
        (vec![5u32, 17, 3, 99, 42, 8, 61], 11u32),
        (vec![7, 1, 250], 12),
    ] {
        let mut cache = r.new_cache();
        out.push(
            r.next_token_logits(&mut cache, &prompt, Masking::Dense)
                .unwrap(),
        );
        steps.push(
            r.next_token_logits(&mut cache, &[next], Masking::Dense)
                .unwrap(),
        );
    }
    out.extend(steps);
    out
}

/// `form`: 0 the CPU adapters' products (`linear_words.wgsl`), 1 the split-K decode
/// products on subgroups (`matvec_sg.wgsl`, with RoPE and SwiGLU in their epilogues), 2
/// split-K without subgroups (`matvec.wgsl`), 3 a GPU adapter's many-row products on tiles
/// (`linear_tiled.wgsl`), which read each quantized part written out in f16
/// (`dequant.wgsl`), 4 the CPU adapters' products from storage buffers (form 0 reads
/// textures on a CPU adapter such as lavapipe, `quant_weights_texture.wgsl`, and storage
/// elsewhere).
fn options(quant: bool, form: u8) -> WgpuEngineOptions {
    WgpuEngineOptions {
        quant_weights: Some(quant),
        split_k: Some(form == 1 || form == 2),
        subgroup_matvec: form != 2,
        tiled: Some(form == 3),
        texture_weights: (form == 4).then_some(false),
        ..WgpuEngineOptions::default()
    }
}

/// Each type alone and three stacked into the QKV product (Q4_0 queries, Q8_0 keys, Q5_1
/// values: widened to 8-bit codes; a Q5_0 gate beside a Q4_0 up), with the products of CPU
/// adapters (`linear_words.wgsl`, the codes from textures and from storage buffers),
/// the split-K decode products (`matvec_sg.wgsl` with RoPE and SwiGLU fused, and
/// `matvec.wgsl`) and a GPU's tiled prefill products (the parts written out in f16 by
/// `dequant.wgsl`), over one binding and split by rows over a small binding limit: logits
/// within f16 activations' error of the CPU reference, and the weights in fewer bytes than
/// the engine that stores them in f16.
#[test]
fn quantized_weights_compute_the_reference_logits_in_fewer_bytes() {
    use GgmlDType::{Q4_0, Q4_1, Q5_0, Q5_1, Q8_0};
    let dir = tiny::tmp("quant_weights-logits");
    let cases = [
        ("q4_0", [Q4_0; 7]),
        ("q4_1", [Q4_1; 7]),
        ("q8_0", [Q8_0; 7]),
        ("mixed", [Q4_0, Q8_0, Q5_1, Q4_1, Q5_0, Q4_0, Q4_1]),
    ];
    for (seed, (name, types)) in cases.into_iter().enumerate() {
        let path = dir.join(format!("{name}.gguf"));
        write(&path, 20 + seed as u64, types);
        let loaded = Model::load(&path).unwrap();
        let want = reference(&loaded);
        for (form, limit) in [
            (0, u64::MAX),
            (1, u64::MAX),
            (2, u64::MAX),
            (3, u64::MAX),
            (4, u64::MAX),
            (0, 4096),
            (1, 4096),
            (3, 4096),
        ] {
            let f16 = WgpuEngine::new_with_options_and_binding_limit(
                ctx(),
                &loaded,
                None,
                false,
                options(false, form),
                limit,
            )
            .unwrap();
            let (model, mut stream) = WeightStream::open(&path).unwrap();
            let e = WgpuEngine::new_with_options_and_binding_limit(
                ctx(),
                ModelRef::Streamed(&model, &mut stream),
                None,
                false,
                options(true, form),
                limit,
            )
            .unwrap();
            let what = format!("{name}, products {form}, binding limit {limit}");
            assert!(
                e.decode_products().contains("GGUF quantization"),
                "{what}: {}",
                e.decode_products()
            );
            // Textures on a CPU adapter's own products only (form 0).
            let cpu = ctx().adapter_info().device_type == wgpu::DeviceType::Cpu;
            assert_eq!(
                e.decode_products().contains("quant_weights_texture.wgsl"),
                cpu && form == 0,
                "{what}: {}",
                e.decode_products()
            );
            assert!(
                e.weight_bytes() < f16.weight_bytes(),
                "{what}: {} bytes against f16's {}",
                e.weight_bytes(),
                f16.weight_bytes()
            );
            for (row, (got, want)) in logits(&e).iter().zip(&want).enumerate() {
                // f16 activations and attention storage: the f16-weight engine's own error
                // here is of the same size (0.9-1.5e-2 at worst, session 58).
                tiny::assert_close(got, want, 2e-2, &format!("{what}, row {row}"));
            }
        }
    }
}

/// Asked on a model whose weights are in memory (f32, no blocks to keep), the setting is
/// said not applied and the engine computes as without it.
#[test]
fn quantized_weights_asked_for_a_loaded_model_are_said_not_applied() {
    let dir = tiny::tmp("quant_weights-loaded");
    let path = dir.join("q8.gguf");
    write(&path, 31, [GgmlDType::Q8_0; 7]);
    let loaded = Model::load(&path).unwrap();
    let e = WgpuEngine::new_with_options(ctx(), &loaded, None, false, options(true, 0)).unwrap();
    let products = e.decode_products();
    assert!(
        products.contains("MOA_WGPU_QUANT_WEIGHTS=1 not applied"),
        "{products}"
    );
}

/// `matvec_q.wgsl` at every row count (`MOA_WGPU_QUANT_GEMV_ROWS` 64), UNROLL 1 and 2: a
/// 9-row decode step takes its ROWS 8 form and then ROWS 1 for the last row, over a K of
/// whole and partial trips, over 4-bit (Q4_0, Q4_1) and
/// 8-bit (the QKV product stacked from Q8_0 keys) codes: the CPU reference's logits.
#[test]
fn matvec_q_takes_many_rows() {
    use GgmlDType::{Q4_0, Q4_1, Q8_0};
    let dir = tiny::tmp("quant_weights-rows");
    let path = dir.join("mixed.gguf");
    // 576 MLP units: the down product's K holds 18 words of 4-bit codes, so with UNROLL 2
    // lavapipe's 8 lanes fold two words a trip, then one of a last trip's pair.
    write_ffn(&path, 41, [Q4_0, Q8_0, Q4_1, Q4_1, Q4_0, Q4_0, Q4_1], 576);
    let loaded = Model::load(&path).unwrap();
    let r = CpuReference::new(loaded.config.clone(), loaded.weights.clone()).unwrap();
    let prompts: Vec<Vec<u32>> = (0..9u32)
        .map(|i| (0..3 + i).map(|j| (i * 37 + j * 11) % 250 + 1).collect())
        .collect();
    let next: Vec<u32> = (0..9u32).map(|i| 200 - i).collect();
    let want: Vec<Vec<f32>> = prompts
        .iter()
        .zip(&next)
        .map(|(p, &n)| {
            let mut cache = r.new_cache();
            r.next_token_logits(&mut cache, p, Masking::Dense).unwrap();
            r.next_token_logits(&mut cache, &[n], Masking::Dense)
                .unwrap()
        })
        .collect();
    for unroll in [1, 2] {
        let (model, mut stream) = WeightStream::open(&path).unwrap();
        let e = WgpuEngine::new_with_options(
            ctx(),
            ModelRef::Streamed(&model, &mut stream),
            None,
            false,
            WgpuEngineOptions {
                quant_gemv_rows: 64,
                quant_gemv_unroll: unroll,
                ..options(true, 1)
            },
        )
        .unwrap();
        let lens: Vec<usize> = prompts.iter().map(Vec::len).collect();
        let mut req = e.start(&lens, 8, 0).unwrap();
        e.prefill_logits(&mut req, &prompts).unwrap();
        let got = e.decode_logits(&mut req, &next).unwrap();
        for (row, (got, want)) in got.iter().zip(&want).enumerate() {
            let what = format!("9 rows on matvec_q, UNROLL {unroll}, row {row}");
            tiny::assert_close(got, want, 2e-2, &what);
        }
    }
}

/// What `auto` asks before it builds the quantized pipelines: a GGUF file with quantized
/// layer matrices has some to keep, one whose layer matrices are all F32 and a Hugging
/// Face folder have none.
#[test]
fn quantized_layers_are_found_in_quantized_files_only() {
    use GgmlDType::{F32, Q4_0};
    let dir = tiny::tmp("quant_weights-layers");
    let q4 = dir.join("q4.gguf");
    write(&q4, 51, [Q4_0; 7]);
    let f32_file = dir.join("f32.gguf");
    write(&f32_file, 51, [F32; 7]);
    let hf = dir.join("hf");
    std::fs::create_dir_all(&hf).unwrap();
    tiny::tiny(51, true).write_hf(&hf, candle_core::DType::F32, true);
    for (path, want) in [(&q4, true), (&f32_file, false), (&hf, false)] {
        let (model, mut stream) = WeightStream::open(path).unwrap();
        assert_eq!(stream.quantized_layers(), want, "{}", path.display());
        let r = ModelRef::Streamed(&model, &mut stream);
        assert_eq!(r.quantized_layers(), want, "{}", path.display());
    }
}

/// `WeightStream::kept_layer_bytes`, what `moa generate`'s memory check counts for a
/// quantized upload on a CPU adapter, is what the engine's upload keeps: the f16 engine's
/// weight bytes less the kept products' f16 bytes plus their kept bytes are the quantized
/// engine's, for a file kept whole and one whose layer-0 output product is F16 (not kept)
/// with types stacked and widened in the others.
#[test]
fn kept_layer_bytes_are_what_the_upload_keeps() {
    use GgmlDType::{F16, Q4_0, Q5_1, Q8_0};
    let dir = tiny::tmp("quant_weights-kept-bytes");
    let whole = dir.join("whole.gguf");
    write(&whole, 61, [Q4_0; 7]);
    let mixed = dir.join("mixed.gguf");
    write(&mixed, 62, [Q4_0, Q8_0, Q5_1, F16, Q4_0, Q5_1, Q4_0]);
    for path in [&whole, &mixed] {
        let bytes = |quant: bool| {
            let (model, mut stream) = WeightStream::open(path).unwrap();
            let kept = stream.kept_layer_bytes();
            let e = WgpuEngine::new_with_options(
                ctx(),
                ModelRef::Streamed(&model, &mut stream),
                None,
                false,
                options(quant, 1),
            )
            .unwrap();
            (e.weight_bytes(), kept)
        };
        let (f16, (weights, kept)) = bytes(false);
        let (quant, _) = bytes(true);
        assert!(weights > 0, "{}", path.display());
        assert_eq!(f16 - 2 * weights + kept, quant, "{}", path.display());
    }
}

/// What `auto` resolves to (`WgpuEngineOptions::product_paths`, which the engine and `moa
/// generate`'s memory check both ask): on a CPU adapter (lavapipe) the texture form runs
/// every product and the quantization is kept; with split-K products asked for it is not
/// (their quantized forms read storage buffers), nor with f32 storage (no textures), nor
/// where the setting says `0`.
#[test]
fn auto_keeps_the_quantization_where_the_texture_form_runs_every_product() {
    use moa::StorageType;
    let ctx = ctx();
    if ctx.adapter_info().device_type != wgpu::DeviceType::Cpu {
        return;
    }
    let auto = WgpuEngineOptions::default();
    let paths = auto.product_paths(ctx, StorageType::F16);
    assert!(paths.texture_only && paths.keep_quantization, "{paths:?}");
    let split_k = WgpuEngineOptions {
        split_k: Some(true),
        ..WgpuEngineOptions::default()
    };
    let paths = split_k.product_paths(ctx, StorageType::F16);
    assert!(!paths.texture_only && !paths.keep_quantization, "{paths:?}");
    assert!(!auto.product_paths(ctx, StorageType::F32).keep_quantization);
    let off = WgpuEngineOptions {
        quant_weights: Some(false),
        ..WgpuEngineOptions::default()
    };
    assert!(!off.product_paths(ctx, StorageType::F16).keep_quantization);
}
