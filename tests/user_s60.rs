//! A new user's journey, round 45 (session 60, branch s60-user; the files before it run to
//! `user_s59.rs`): the Llama-3.2-1B and 3B shapes (a few layers, the real widths, so the
//! embedding and the prefill activations exceed lavapipe's 128 MiB storage binding) as
//! Hugging Face folders and GGUF files, with upstream's plans; `moa-compile`'s output read
//! as an app reads it; `moa bench` on a machine without a GPU. What the programs got wrong,
//! each pinned here (benches/new-user/s60/journey.md has the runs).

mod common;

#[allow(dead_code)]
#[path = "../examples/random_gguf.rs"]
mod random_gguf;

use common::cli::s;

common::cli::tagged!();

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// `cargo run --example random_gguf -- OUT --like llama-3.2-3b --mix q4_k_m --layers 2`, as
/// a user keeping the real widths at a fraction of the size types it: the example read only
/// `--like` and `--mix` and ignored every other argument, so `--layers 2` wrote the 16- or
/// 28-layer file (772 MB for the 1B, 20 s and 1.5 GB of memory) without a word. It now takes
/// `--layers`, and refuses an unknown flag, a flag without its value, a second path and a
/// layer count out of range, naming each.
#[test]
fn random_gguf_takes_layers_and_refuses_what_it_does_not_know() {
    let a = random_gguf::parse_args(&strings(&[
        "/tmp/x.gguf",
        "--like",
        "llama-3.2-3b",
        "--mix",
        "q4_k_m",
        "--layers",
        "2",
    ]))
    .unwrap();
    assert_eq!(a.out, "/tmp/x.gguf");
    assert_eq!(a.like, "llama-3.2-3b");
    let full = moa::model::random::like("llama-3.2-3b").unwrap();
    assert_eq!(a.config.n_layers, 2);
    assert_eq!(a.config.hidden_size, full.hidden_size);
    assert_eq!(a.config.ffn_size, full.ffn_size);
    assert_eq!(a.config.vocab_size, full.vocab_size);
    // The defaults: the 1B shape, whole, Q8_0.
    let d = random_gguf::parse_args(&strings(&["x.gguf"])).unwrap();
    assert_eq!(d.config, moa::model::random::like("llama-3.2-1b").unwrap());
    let refused = |args: &[&str], needle: &str| {
        let e = match random_gguf::parse_args(&strings(args)) {
            Ok(_) => panic!("{args:?} was taken"),
            Err(e) => e,
        };
        assert!(e.contains(needle), "{args:?}: `{needle}` not in {e}");
    };
    refused(&["x.gguf", "--layer", "2"], "unknown flag `--layer`");
    refused(&["x.gguf", "--layers"], "--layers needs a value");
    refused(&["x.gguf", "--layers", "0"], "--layers 0 is out of range");
    refused(
        &["x.gguf", "--layers", "two"],
        "--layers two is out of range",
    );
    refused(&["x.gguf", "y.gguf"], "a second output `y.gguf`");
    refused(&["--mix", "q4_0"], "no output file given");
    refused(&["x.gguf", "--mix", "q5_k"], "--mix q5_k is not a mix");
    refused(&["x.gguf", "--like", "gpt-2"], "--like");
}

