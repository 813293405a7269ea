//! Weights handed to an engine one tensor at a time (`moa::model::WeightStream`): the
//! stream gives the tensors `Model::load` holds, bit for bit, in both formats, and the wgpu
//! engine built from it computes what an engine built from the loaded model does.
mod common;

use std::sync::OnceLock;

use common::tiny::{self, tiny};
use moa::model::{Model, WeightFeed, WeightStream};
use moa::runtime::engine::{Engine, Sampling};
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

/// Every tensor name of the loaded model, GGUF-style without `.weight`.
fn names(m: &Model) -> Vec<String> {
    let mut v = vec!["token_embd".to_string(), "output_norm".to_string()];
    if m.weights.output.is_some() {
        v.push("output".into());
    }
    for i in 0..m.config.n_layers {
        for f in moa::model::LayerWeights::FIELDS {
            v.push(format!("blk.{i}.{f}"));
        }
    }
    v
}

/// A GGUF file (tied and untied, Q8_0 and F32 tensors, permuted Q/K) and a Hugging Face
/// folder (bf16, two shards): the stream's tensors equal `Model::load`'s, in any order
/// asked, and its model is the loaded one without weights.
#[test]
fn the_stream_gives_the_loaded_tensors_in_both_formats() {
    let dir = tiny::tmp("weight_stream-formats");
    let mut paths = Vec::new();
    for tied in [true, false] {
        let gguf = dir.join(format!("tiny-{tied}.gguf"));
        tiny(7, tied).write_gguf(&gguf, |_, _| {});
        paths.push(gguf);
    }
    let hf = dir.join("hf");
    std::fs::create_dir_all(&hf).unwrap();
    tiny(8, false).write_hf(&hf, candle_core::DType::BF16, false);
    paths.push(hf);
    for path in paths {
        let loaded = Model::load(&path).unwrap();
        let (model, mut stream) = WeightStream::open(&path).unwrap();
        assert_eq!(model.config, loaded.config);
        assert_eq!(model.special, loaded.special);
        assert_eq!(model.weights, moa::model::Weights::default());
        assert_eq!(
            WeightFeed::Stream(&mut stream).has_output(),
            loaded.weights.output.is_some()
        );
        // Last name first: the upload asks in its own order, not the file's.
        for name in names(&loaded).iter().rev() {
            let want = WeightFeed::Borrowed(&loaded.weights)
                .tensor(name, &[])
                .unwrap()
                .into_owned();
            let got = stream.take(name, &want.shape).unwrap();
            let bits = |t: &moa::model::HostTensor| -> Vec<u32> {
                t.data.iter().map(|v| v.to_bits()).collect()
            };
            assert_eq!(got.shape, want.shape, "{name}");
            assert_eq!(bits(&got), bits(&want), "{} {name}", path.display());
        }
    }
}

/// A stream's errors name the file and the tensor as the file names it: a tensor the file
/// lacks, another shape.
#[test]
fn a_stream_names_the_tensor_it_cannot_give() {
    let dir = tiny::tmp("weight_stream-errors");
    let path = dir.join("tiny.gguf");
    tiny(9, true).write_gguf(&path, |_, _| {});
    let (_, mut stream) = WeightStream::open(&path).unwrap();
    let shape = [tiny::HIDDEN, tiny::FFN];
    let e = stream
        .take("blk.7.ffn_down", &shape)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("blk.7.ffn_down.weight") && e.contains("tiny.gguf"),
        "{e}"
    );
    let e = stream
        .take("blk.0.ffn_down", &[tiny::FFN, tiny::HIDDEN])
        .unwrap_err()
        .to_string();
    assert!(e.contains("blk.0.ffn_down.weight"), "{e}");
}

/// Logits of a 2-row prefill and a decode step, as bits, and 4 greedy tokens a row.
fn run(e: &WgpuEngine) -> (Vec<u32>, Vec<u32>) {
    let prompts = vec![vec![5u32, 17, 3, 99, 42], vec![7u32, 1, 250]];
    let mut req = e.start(&[5, 3], 8, 0).unwrap();
    let logits = e.prefill_logits(&mut req, &prompts).unwrap();
    let mut bits: Vec<u32> = logits.iter().flatten().map(|v| v.to_bits()).collect();
    let step = e.decode_logits(&mut req, &[11, 12]).unwrap();
    bits.extend(step.iter().flatten().map(|v| v.to_bits()));
    let mut req = e.start(&[5, 3], 8, 0).unwrap();
    let mut next = e
        .prefill_tokens(&mut req, &prompts, Sampling::greedy())
        .unwrap();
    let mut tokens = next.clone();
    for _ in 0..3 {
        next = e
            .decode_tokens(&mut req, &next, Sampling::greedy())
            .unwrap();
        tokens.extend(&next);
    }
    (bits, tokens)
}

/// The wgpu engine (lavapipe in CI) built from a GGUF stream computes the logits and
/// greedy tokens of the engine built from the loaded model, bit for bit, tied and untied,
/// both storing the weights in f16: the streamed engine would otherwise keep the file's
/// quantization (`MOA_WGPU_QUANT_WEIGHTS`, on by default for CPU adapters since session
/// 60), which the loaded model's f32 weights no longer have (tests/quant_weights.rs
/// checks that form against the CPU reference).
#[test]
fn an_engine_from_a_stream_computes_what_one_from_the_loaded_model_does() {
    let dir = tiny::tmp("weight_stream-engine");
    for tied in [true, false] {
        let path = dir.join(format!("tiny-{tied}.gguf"));
        tiny(10, tied).write_gguf(&path, |_, _| {});
        let loaded = Model::load(&path).unwrap();
        let kept = run(&WgpuEngine::new(ctx(), &loaded, None, false).unwrap());
        let (model, mut stream) = WeightStream::open(&path).unwrap();
        let f16 = WgpuEngineOptions {
            quant_weights: Some(false),
            ..WgpuEngineOptions::default()
        };
        let streamed = WgpuEngine::new_with_options(
            ctx(),
            ModelRef::Streamed(&model, &mut stream),
            None,
            false,
            f16,
        );
        assert_eq!(run(&streamed.unwrap()), kept, "tied {tied}");
    }
}
