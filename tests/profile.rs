//! Attention-influence profiling on the tiny random Llama: the forward pass, the influence
//! formula against the derivative of the loss along the masking direction, the
//! layer-by-layer walk against one full autograd pass, and the profile file.

mod common;

use candle_core::DType;
use common::samples::sample;
use common::tiny::{self, naive_logits, tiny, LAYERS, Q_HEADS, VOCAB};
use moa::calib::CalibSample;
use moa::model::Model;
use moa::profile::influence::influence_row;
use moa::profile::InfluenceProfile;
use moa::profile::{self, walk_backward, AttnEdit, Event, GradModel, LossSpan};

fn load(seed: u64, tied: bool, name: &str) -> (tiny::Tiny, Model) {
    let w = tiny(seed, tied);
    let dir = tiny::tmp(name);
    let gguf = dir.join("tiny.gguf");
    w.write_gguf(&gguf, |_, _| {});
    (w, Model::load(&gguf).unwrap())
}

fn grad_model(m: &Model, dtype: DType) -> GradModel {
    GradModel::new(m.config.clone(), &m.weights, dtype).unwrap()
}

/// Per layer, per head: (A, G) as `[T·T]`.
type Attn = Vec<(Vec<Vec<f32>>, Vec<Vec<f32>>)>;

fn walk(model: &GradModel, span: &LossSpan) -> (Attn, f64) {
    let mut out: Attn = vec![(Vec::new(), Vec::new()); LAYERS];
    let loss = walk_backward(model, span, &mut |l, a| {
        out[l] = (a.probs.clone(), a.grads.clone());
    })
    .unwrap();
    (out, loss)
}

#[test]
fn loss_matches_naive_f64_model() {
    let (w, m) = load(11, true, "profile-loss");
    let tokens = tiny::tokens(20, 3);
    let span = LossSpan {
        tokens: &tokens,
        response: 15..20,
    };
    let logits = naive_logits(&w, true, &tokens, |_, _, q, k| k <= q);
    let mut want = 0.0f64;
    for p in 15..20 {
        let row = &logits[(p - 1) * VOCAB..p * VOCAB];
        let max = row.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64;
        let lse = row
            .iter()
            .map(|&v| (v as f64 - max).exp())
            .sum::<f64>()
            .ln()
            + max;
        want += lse - row[tokens[p] as usize] as f64;
    }
    want /= 5.0;
    for dtype in [DType::F32, DType::F64] {
        let got = grad_model(&m, dtype).loss(&span, None).unwrap();
        assert!((got - want).abs() < 1e-4, "{dtype:?}: {got} vs {want}");
        // The walk reports the same loss.
        let (_, walked) = walk(&grad_model(&m, dtype), &span);
        assert!((walked - want).abs() < 1e-4);
    }
}

/// ΔL_ij = A_ij/(1−A_ij)·(Σ_n G_in A_in − G_ij) is the first-order change of the loss when
/// entry (i, j) is masked and its row renormalised. Scaling A_ij by (1 − t) and
/// renormalising is the path from t = 0 (nothing masked) to t = 1 (masked); along it
/// dL/dt|₀ = A_ij·(Σ_n G_in A_in − G_ij), so the formula must equal (dL/dt|₀)/(1 − A_ij)
/// — the linear extrapolation of the masking path to t = 1 in the renormalised
/// coordinates. The derivative is a central finite difference of the f64 model's loss.
#[test]
fn influence_matches_derivative_of_masking() {
    let (_, m) = load(12, false, "profile-fd");
    let model = grad_model(&m, DType::F64);
    let tokens = tiny::tokens(24, 5);
    let t = tokens.len();
    let span = LossSpan {
        tokens: &tokens,
        response: 19..24,
    };
    let (attn, _) = walk(&model, &span);
    let mut checked = 0;
    let mut worst = 0.0f64;
    for (l, (probs, grads)) in attn.iter().enumerate() {
        for h in [0, Q_HEADS - 1] {
            let (a, g) = (&probs[h], &grads[h]);
            // Entries: the largest influences of this head and a few fixed ones.
            let mut cand: Vec<(usize, usize, f64)> = Vec::new();
            let mut row = vec![0.0f64; t];
            for i in 1..t {
                influence_row(i, &a[i * t..(i + 1) * t], &g[i * t..(i + 1) * t], &mut row);
                for (j, v) in row.iter().take(i + 1).enumerate() {
                    cand.push((i, j, *v));
                }
            }
            cand.sort_by(|x, y| y.2.abs().total_cmp(&x.2.abs()));
            let mut picks: Vec<_> = cand.iter().take(4).copied().collect();
            picks.extend(
                cand.iter()
                    .filter(|(i, j, _)| (*i, *j) == (20, 3) || (*i, *j) == (23, 23))
                    .copied(),
            );
            for (i, j, formula) in picks {
                let aij = f64::from(a[i * t + j]);
                let d = 1e-4;
                let at = |tt: f64| {
                    let e = AttnEdit {
                        layer: l,
                        q_head: h,
                        query: i,
                        key: j,
                        t: tt,
                    };
                    model.loss(&span, Some(e)).unwrap()
                };
                let dldt = (at(d) - at(-d)) / (2.0 * d);
                let fd = dldt / (1.0 - aij);
                let err = (fd - formula).abs();
                let tol = 1e-7 + 1e-4 * formula.abs();
                assert!(
                    err <= tol,
                    "layer {l} head {h} ({i},{j}) A={aij:.4}: formula {formula:.3e}, \
                     finite difference {fd:.3e}"
                );
                worst = worst.max(err / formula.abs().max(1e-12));
                checked += 1;
            }
        }
    }
    assert!(checked >= 16, "checked {checked} entries");
    eprintln!("worst relative error {worst:.2e} over {checked} entries");
}

#[test]
fn walk_matches_full_autograd() {
    let (_, m) = load(13, true, "profile-walk");
    let model = grad_model(&m, DType::F32);
    let tokens = tiny::tokens(30, 7);
    let span = LossSpan {
        tokens: &tokens,
        response: 24..30,
    };
    let (walked, _) = walk(&model, &span);
    let full = model.full_autograd(&span).unwrap();
    for l in 0..LAYERS {
        for h in 0..Q_HEADS {
            let scale = full[l].grads[h].iter().fold(0f32, |a, v| a.max(v.abs()));
            assert!(scale > 0.0, "layer {l} head {h}: G is all zero");
            for (x, y) in walked[l].1[h].iter().zip(&full[l].grads[h]) {
                assert!((x - y).abs() <= 1e-4 * scale, "G layer {l} head {h}");
            }
            for (x, y) in walked[l].0[h].iter().zip(&full[l].probs[h]) {
                assert!((x - y).abs() <= 1e-6, "A layer {l} head {h}");
            }
        }
    }
}

#[test]
fn profile_file_round_trips_with_the_right_shape() {
    let (_, m) = load(14, true, "profile-file");
    let model = grad_model(&m, DType::F32);
    let samples = vec![
        sample("a", tiny::tokens(32, 1), 4, 32),
        sample("b", tiny::tokens(27, 2), 3, 32),
        sample("too-long", tiny::tokens(40, 3), 3, 32),
        sample("other-level", tiny::tokens(20, 4), 3, 64),
    ];
    let (used, skipped) = profile::select(&samples, 32, None);
    assert_eq!(skipped, 1);
    assert_eq!(
        used.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let mut events = 0;
    let prof = profile::profile_length(&model, &used, 32, 8, None, &mut |e| {
        if let Event::Done(_) = e {
            events += 1
        }
    })
    .unwrap();
    assert_eq!(events, 2);
    let nb = 4;
    assert_eq!(prof.influence.len(), LAYERS * Q_HEADS * nb * nb);
    // The mean equals (a + b)/2 computed sample by sample.
    let one = |s: &CalibSample| {
        let t = s.tokens();
        let span = LossSpan {
            tokens: &t,
            response: s.response_range(),
        };
        profile::sample_influence(&model, &span, 32, 8)
            .unwrap()
            .tiles
    };
    let (a, b) = (one(&samples[0]), one(&samples[1]));
    for (k, v) in prof.influence.iter().enumerate() {
        let want = ((a[k] + b[k]) / 2.0) as f32;
        assert!((v - want).abs() <= 1e-6 * want.abs().max(1.0));
    }
    // Causal: no mass above the diagonal of tiles.
    for l in 0..LAYERS {
        for h in 0..Q_HEADS {
            let head = prof.head(l, h);
            for qb in 0..nb {
                for kb in qb + 1..nb {
                    assert_eq!(head[qb * nb + kb], 0.0);
                }
            }
            // The response sits in the last query block: its rows always carry mass (in
            // the last layer only rows that predict the response have G ≠ 0).
            assert!(head[nb * nb - 1] > 0.0, "layer {l} head {h}");
        }
    }
    let dir = tiny::tmp("profile-file-out");
    let path = dir.join(profile::profile_file_name(32));
    prof.save(&path).unwrap();
    let back = InfluenceProfile::load(&path).unwrap();
    assert_eq!(back, prof);
    assert_eq!(back.n_blocks(), nb);
    assert_eq!(back.model, m.config.model_shape());
    // The committed summary: one row per layer, shares in [0, 1] summing to 1.
    let tsv = profile::summary::summary_tsv(&back);
    let rows: Vec<&str> = tsv.lines().skip(1).collect();
    assert_eq!(rows.len(), LAYERS);
    for r in rows {
        let v: Vec<f64> = r.split('\t').map(|x| x.parse().unwrap()).collect();
        assert!((v[2] + v[3] + v[4] - 1.0).abs() < 2e-3, "{r}");
    }
}

#[test]
fn sample_store_resumes_and_merges_shards() {
    let (_, m) = load(15, true, "profile-store");
    let model = grad_model(&m, DType::F32);
    let samples = [
        sample("a", tiny::tokens(32, 1), 4, 32),
        sample("b", tiny::tokens(30, 2), 3, 32),
        sample("c", tiny::tokens(25, 3), 2, 32),
    ];
    let all: Vec<&CalibSample> = samples.iter().collect();
    let store = tiny::tmp("profile-store-samples");
    let mut computed = 0;
    let mut count = |e: Event| {
        if let Event::Done(r) = e {
            if !r.cached {
                computed += 1;
            }
        }
    };
    // Two "processes" take disjoint shards into one store ...
    profile::profile_length(&model, &all[0..1], 32, 8, Some(&store), &mut count).unwrap();
    profile::profile_length(&model, &all[1..3], 32, 8, Some(&store), &mut count).unwrap();
    assert_eq!(computed, 3);
    assert!(profile::sample_file(&store, 32, "b").exists());
    // ... and a last run over all samples computes nothing and gives the mean of a fresh
    // run (every sample's tiles pass through f32 in both).
    let mut recomputed = 0;
    let merged = profile::profile_length(&model, &all, 32, 8, Some(&store), &mut |e| {
        if let Event::Done(r) = e {
            recomputed += usize::from(!r.cached);
        }
    })
    .unwrap();
    assert_eq!(recomputed, 0);
    let fresh = profile::profile_length(&model, &all, 32, 8, None, &mut |_| {}).unwrap();
    assert_eq!(merged, fresh);
    // A store entry of another block size is refused, not averaged in.
    let err = profile::profile_length(&model, &all, 32, 16, Some(&store), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("a.safetensors"), "{err}");
}

/// `moa calib --device cuda` answers through `GradModel::generate_greedy`: the same tokens
/// as the CPU reference (checked here on the CPU, where both run).
#[test]
fn greedy_answers_match_the_cpu_reference() {
    let (_, m) = load(21, false, "profile-greedy");
    let model = grad_model(&m, DType::F32);
    let reference = moa::model::CpuReference::from_model(m).unwrap();
    for seed in 0..3 {
        let prompt = tiny::tokens(17 + seed as usize, seed);
        let want = reference
            .generate(&prompt, 6, moa::model::Masking::Dense, &[])
            .unwrap();
        assert_eq!(model.generate_greedy(&prompt, 6, &[]).unwrap(), want);
        // A stop token ends the answer before it, as in the reference.
        let stop = [want[2]];
        let cut = reference
            .generate(&prompt, 6, moa::model::Masking::Dense, &stop)
            .unwrap();
        assert_eq!(model.generate_greedy(&prompt, 6, &stop).unwrap(), cut);
    }
}

/// `--device`: cpu works everywhere; a CUDA device in a build without the `cuda` feature,
/// or a misspelt name, is a clear error.
#[test]
fn device_names() {
    assert!(profile::device("cpu").unwrap().is_cpu());
    let e = profile::device("gpu").unwrap_err().to_string();
    assert!(e.contains("cpu, cuda or cuda:K"), "{e}");
    if !cfg!(feature = "cuda") {
        let e = profile::device("cuda:1").unwrap_err().to_string();
        assert!(e.contains("build-cuda-profiler.sh"), "{e}");
    }
}

/// The forward pass in chunks of one KV group (what a 7B shape at 8k needs to fit a GPU)
/// gives the loss of the pass over every head at once, with and without an edited row in
/// a head of a later chunk.
/// The gradient the walk hands from layer to layer carries no autograd graph: candle
/// leaves a variable's gradient attached to the tensors it was built from (through RMSNorm
/// those depend on x), and a walk that passed it on kept every KV group's intermediates
/// alive and walked them again in the next layer, which ran a Llama-2-7B shape at
/// T = 8192 out of the H200's memory (benches/RESULTS.md, issue 9 session 8).
#[test]
fn walk_gradient_carries_no_graph() {
    let (_, m) = load(19, false, "profile-detached");
    let model = grad_model(&m, DType::F32);
    let tokens = tiny::tokens(24, 9);
    let span = LossSpan {
        tokens: &tokens,
        response: 18..24,
    };
    let ctx = model.context(tokens.len()).unwrap();
    let mut xs = model.forward_inputs(&tokens, &ctx, None).unwrap();
    assert!(xs.iter().all(|x| !x.track_op()));
    let last = xs.pop().unwrap();
    let (mut grad, _) = model.top_grad(&last, &span).unwrap();
    assert!(!grad.track_op(), "top gradient");
    for l in (0..LAYERS).rev() {
        let x = xs.pop().unwrap();
        grad = model
            .layer_backward_groups(l, &x, &grad, &ctx, &mut |heads, a, g| {
                assert!(!a.track_op() && !g.track_op(), "layer {l} heads {heads:?}");
                Ok(())
            })
            .unwrap();
        assert!(!grad.track_op(), "gradient entering layer {l}");
    }
}

#[test]
fn chunked_heads_match_all_heads_at_once() {
    let (_, m) = load(17, false, "profile-chunks");
    let tokens = tiny::tokens(24, 5);
    let span = LossSpan {
        tokens: &tokens,
        response: 18..24,
    };
    let whole = grad_model(&m, DType::F64);
    let mut chunked = grad_model(&m, DType::F64);
    chunked.attn_chunk_bytes = 1;
    let g = m.config.group_size();
    assert_eq!(whole.head_chunks(24), vec![0..Q_HEADS]);
    let chunks = chunked.head_chunks(24);
    assert_eq!(chunks.len(), Q_HEADS / g);
    assert!(chunks.iter().all(|c| c.len() == g && c.start % g == 0));
    let edit = AttnEdit {
        layer: 1,
        q_head: Q_HEADS - 1,
        query: 20,
        key: 3,
        t: 0.7,
    };
    for e in [None, Some(edit)] {
        let a = whole.loss(&span, e).unwrap();
        let b = chunked.loss(&span, e).unwrap();
        assert!((a - b).abs() < 1e-12, "{e:?}: {a} vs {b}");
    }
    assert!(
        (whole.loss(&span, Some(edit)).unwrap() - whole.loss(&span, None).unwrap()).abs() > 1e-9
    );
    // The backward walk (whose first step recomputes the attention output in the same
    // chunks) gives the same A, G and loss.
    let mut ta = Vec::new();
    let la = profile::walk_backward(&whole, &span, &mut |_, a| {
        ta.push((a.probs.clone(), a.grads.clone()))
    })
    .unwrap();
    let mut tb = Vec::new();
    let lb = profile::walk_backward(&chunked, &span, &mut |_, a| {
        tb.push((a.probs.clone(), a.grads.clone()))
    })
    .unwrap();
    assert!((la - lb).abs() < 1e-12, "{la} vs {lb}");
    for ((pa, ga), (pb, gb)) in ta.iter().zip(&tb) {
        for (x, y) in pa.iter().flatten().zip(pb.iter().flatten()) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
        for (x, y) in ga.iter().flatten().zip(gb.iter().flatten()) {
            assert!((x - y).abs() < 1e-6 * x.abs().max(1.0), "{x} vs {y}");
        }
    }
}

/// `moa profile --text-weight W`: the profile is Σ w_s·tiles_s / Σ w_s with w = W for
/// `text` samples and 1 for the others (weight 1 is the plain mean), read from the store.
#[test]
fn text_weight_averages_text_samples_with_their_weight() {
    let (_, m) = load(16, true, "profile-weight");
    let model = grad_model(&m, DType::F32);
    let mut samples = [
        sample("r", tiny::tokens(32, 4), 4, 32),
        sample("t", tiny::tokens(30, 5), 6, 32),
    ];
    samples[1].task = "text".into();
    let all: Vec<&CalibSample> = samples.iter().collect();
    let store = tiny::tmp("profile-weight-samples");
    let one = |i: usize| {
        profile::profile_length(&model, &all[i..i + 1], 32, 8, Some(&store), &mut |_| {}).unwrap()
    };
    let (r, t) = (one(0), one(1));
    let plain = profile::profile_length(&model, &all, 32, 8, Some(&store), &mut |_| {}).unwrap();
    let w1 = profile::profile_length_weighted(&model, &all, 32, 8, Some(&store), 1.0, &mut |_| {})
        .unwrap();
    assert_eq!(plain, w1);
    let w3 = profile::profile_length_weighted(&model, &all, 32, 8, Some(&store), 3.0, &mut |_| {})
        .unwrap();
    let (rc, tc) = (
        &r.cuts.as_ref().unwrap().values,
        &t.cuts.as_ref().unwrap().values,
    );
    for (i, &v) in w3.cuts.as_ref().unwrap().values.iter().enumerate() {
        let want = (f64::from(rc[i]) + 3.0 * f64::from(tc[i])) / 4.0;
        assert!(
            (f64::from(v) - want).abs() <= 1e-6 * want.abs().max(1e-3),
            "{i}: {v} vs {want}"
        );
    }
    for (i, &v) in w3.influence.iter().enumerate() {
        let want = (f64::from(r.influence[i]) + 3.0 * f64::from(t.influence[i])) / 4.0;
        assert!(
            (f64::from(v) - want).abs() <= 1e-6 * want.abs().max(1e-3),
            "{i}"
        );
    }
    // Weight 0 leaves the text out; no weight at all is an error, as is a negative one.
    let w0 = profile::profile_length_weighted(&model, &all, 32, 8, Some(&store), 0.0, &mut |_| {})
        .unwrap();
    assert_eq!(w0.influence, r.influence);
    let only_text =
        profile::profile_length_weighted(&model, &all[1..], 32, 8, Some(&store), 0.0, &mut |_| {});
    assert!(only_text.unwrap_err().to_string().contains("weight 0"));
    let neg =
        profile::profile_length_weighted(&model, &all, 32, 8, Some(&store), -1.0, &mut |_| {});
    assert!(neg.unwrap_err().to_string().contains("≥ 0"));
}

/// `moa profile --drop-wrong`: retrieval samples the dense model answered wrongly are
/// left out, `text` samples (no answer to get wrong) and right answers are kept, in order.
#[test]
fn split_wrong_drops_only_wrong_retrieval_answers() {
    let mut samples = [
        sample("right", tiny::tokens(32, 1), 4, 32),
        sample("wrong", tiny::tokens(32, 2), 4, 32),
        sample("text", tiny::tokens(32, 3), 4, 32),
        sample("right2", tiny::tokens(32, 4), 4, 32),
    ];
    samples[1].expected.correct = false;
    samples[2].task = "text".into();
    samples[2].expected.correct = false;
    let (kept, dropped) = profile::split_wrong(samples.iter().collect());
    let ids = |v: &[&CalibSample]| v.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&kept), ["right", "text", "right2"]);
    assert_eq!(ids(&dropped), ["wrong"]);
}

/// `moa profile --drop-wrong` on a length whose every sample dense answered wrongly stops
/// before any work, naming the length, the file and the way out.
#[test]
fn drop_wrong_with_nothing_left_is_a_clear_error() {
    let dir = tiny::tmp("profile-drop-wrong");
    tiny(17, true).write_gguf(&dir.join("tiny.gguf"), |_, _| {});
    let mut s = sample("passkey-32-0", tiny::tokens(32, 5), 4, 32);
    s.expected.correct = false;
    let calib = dir.join("calib.jsonl");
    moa::calib::write_jsonl(&calib, &[s]).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_moa"))
        .args(["profile", "--calib"])
        .arg(&calib)
        .args([
            "--lengths",
            "32",
            "--block",
            "8",
            "--drop-wrong",
            "--quiet",
            "--model",
        ])
        .arg(dir.join("tiny.gguf"))
        .arg("-o")
        .arg(dir.join("out"))
        .output()
        .expect("runs moa");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("dropping passkey-32-0 (--drop-wrong)")
            && err.contains("length 32: the dense model answered the 1 sample of")
            && err.contains("calib.jsonl"),
        "{err}"
    );
}

/// A length the calibration has no sample of is refused before anything is made: the
/// refusal used to come from the profiler after `-o` was created, leaving an empty folder.
#[test]
fn a_length_without_samples_is_refused_before_the_output_folder_is_made() {
    let dir = tiny::tmp("profile-no-length");
    tiny(17, true).write_gguf(&dir.join("tiny.gguf"), |_, _| {});
    let calib = dir.join("calib.jsonl");
    let s = sample("passkey-32-0", tiny::tokens(32, 5), 4, 32);
    moa::calib::write_jsonl(&calib, &[s]).unwrap();
    let out_dir = dir.join("out");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_moa"))
        .args(["profile", "--calib"])
        .arg(&calib)
        .args(["--lengths", "64", "--block", "8", "--quiet", "--model"])
        .arg(dir.join("tiny.gguf"))
        .arg("-o")
        .arg(&out_dir)
        .output()
        .expect("runs moa");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--lengths 64")
            && err.contains("calib.jsonl")
            && err.contains("no calibration sample of length 64")
            && err.contains("it has lengths {32}"),
        "{err}"
    );
    assert!(!out_dir.exists(), "{err}");
}

/// A store profiled from one calibration and then given another whose samples have the
/// same ids (another seed, source or model: ids are `passkey-1024-0` in every run) computes
/// the new samples again instead of reading the earlier tiles back as theirs, says so, and
/// gives exactly a fresh run's profile. Before, `moa profile --calib B.jsonl -o DIR` after
/// `--calib A.jsonl -o DIR` wrote A's profile under B's name ("reusing its stored tiles").
#[test]
fn a_store_is_never_read_back_for_another_sample_of_the_same_id() {
    let (_, m) = load(17, true, "profile-store-other");
    let model = grad_model(&m, DType::F32);
    let first = [
        sample("a", tiny::tokens(32, 1), 4, 32),
        sample("b", tiny::tokens(30, 2), 3, 32),
    ];
    // The same ids over other tokens; `b` keeps its tokens (still reused).
    let second = [
        sample("a", tiny::tokens(32, 9), 4, 32),
        sample("b", tiny::tokens(30, 2), 3, 32),
    ];
    assert_ne!(first[0].tokens(), second[0].tokens());
    let store = tiny::tmp("profile-store-other-samples");
    let first_refs: Vec<&CalibSample> = first.iter().collect();
    let second_refs: Vec<&CalibSample> = second.iter().collect();
    profile::profile_length(&model, &first_refs, 32, 8, Some(&store), &mut |_| {}).unwrap();
    let mut reports = Vec::new();
    let got = profile::profile_length(&model, &second_refs, 32, 8, Some(&store), &mut |e| {
        if let Event::Done(r) = e {
            reports.push((r.id.clone(), r.cached, r.replaced.clone()));
        }
    })
    .unwrap();
    assert_eq!(reports.len(), 2);
    let (a, b) = (&reports[0], &reports[1]);
    assert!(
        !a.1,
        "sample a was read back from the other calibration's tiles"
    );
    let why = a.2.as_deref().unwrap_or_default();
    assert!(
        why.contains("a.safetensors") && why.contains("another sample with id `a`"),
        "{why}"
    );
    assert!(b.1 && b.2.is_none(), "sample b should be reused: {b:?}");
    let fresh = profile::profile_length(&model, &second_refs, 32, 8, None, &mut |_| {}).unwrap();
    assert_eq!(got, fresh);
    // The replaced file now holds the new sample: a third run reuses both.
    let mut cached = 0;
    profile::profile_length(&model, &second_refs, 32, 8, Some(&store), &mut |e| {
        if let Event::Done(r) = e {
            cached += usize::from(r.cached);
        }
    })
    .unwrap();
    assert_eq!(cached, 2);
}
