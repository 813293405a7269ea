//! Calibration data with generated filler (CI installs no Debian text packages): seeded
//! determinism, the response mask, the JSONL round trip, pass-key depth, and one run
//! answered by the tiny random Llama through its own tokenizer.

mod common;

use common::bytes::Bytes;
use common::tiny::{self, tiny};
use moa::calib::{
    self, passkey_needle, CalibConfig, CalibError, CalibSample, TextCodec, TextSource,
    PASSKEY_INTRO, PASSKEY_QUESTION,
};
use moa::model::{CpuReference, Masking, Model, ModelTokenizer};

/// One token per byte: lengths are easy to reason about.
/// A perfect reader: the pass key, or the rest of the quoted sentence, then a newline and
/// more text (which the answer cut must drop).
fn oracle(prompt: &[u32], max_new: usize) -> Result<Vec<u32>, CalibError> {
    let text = Bytes.decode(prompt)?;
    let answer = if let Some(at) = text.find("The pass key is ") {
        let key: String = text[at + 16..].chars().take(5).collect();
        format!(" {key}.\nWhat else")
    } else {
        // The quote task: the sentence of the document that begins with the given words.
        let (doc, question) = text.split_once("End of document.").unwrap();
        let prefix = question.split_once(": ").unwrap().1;
        let at = doc.find(prefix).unwrap() + prefix.len();
        let rest = doc[at..].split_inclusive('.').next().unwrap();
        format!("{rest}\nAnd then")
    };
    let mut ids = Bytes.encode(&answer)?;
    ids.truncate(max_new);
    Ok(ids)
}

fn cfg(seed: u64) -> CalibConfig {
    CalibConfig {
        lengths: vec![512, 1024],
        samples: 6,
        seed,
        source: TextSource::Generated,
        passkey_source: TextSource::Repeat,
        max_new_tokens: 96,
        text_samples: 0,
        text_scored: 256,
    }
}

fn build(cfg: &CalibConfig) -> Vec<CalibSample> {
    calib::build_samples(cfg, &Bytes, &mut oracle, &mut |_, _, _| {}).unwrap()
}

#[test]
fn deterministic_by_seed() {
    let a = build(&cfg(7));
    let b = build(&cfg(7));
    let c = build(&cfg(8));
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.len(), 12);
    // Two pass-key samples, then one quote sample, repeating.
    let tasks: Vec<&str> = a[..6].iter().map(|s| s.task.as_str()).collect();
    assert_eq!(
        tasks,
        ["passkey", "passkey", "quote", "passkey", "passkey", "quote"]
    );
    // Adding a length leaves the others' samples unchanged (per-sample seeds).
    let mut more = cfg(7);
    more.lengths = vec![768, 512, 1024];
    let d = build(&more);
    assert_eq!(&d[6..], &a[..]);
    assert_ne!(&d[..6], &a[..6]);
}

#[test]
fn response_mask_marks_the_answer() {
    for s in build(&cfg(1)) {
        s.check().unwrap();
        assert!(s.n_tokens <= s.length_level as usize, "{}", s.id);
        // Close to the level: the filler fills the budget.
        assert!(s.n_tokens + 200 > s.length_level as usize, "{}", s.id);
        let mask = s.response_mask();
        let tokens = s.tokens();
        assert_eq!(mask.len(), tokens.len());
        let answer: Vec<u32> = tokens
            .iter()
            .zip(&mask)
            .filter(|(_, m)| **m)
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(answer, s.response_tokens);
        assert_eq!(s.response_span, [s.prompt_tokens.len(), s.n_tokens]);
        // The oracle's answer is cut before its newline, and it is right.
        assert!(
            !s.dense_answer_text.contains('\n'),
            "{:?}",
            s.dense_answer_text
        );
        assert!(s.expected.correct, "{}: {:?}", s.id, s.dense_answer_text);
        let prompt = Bytes.decode(&s.prompt_tokens).unwrap();
        if s.task == "passkey" {
            assert!(prompt.ends_with(PASSKEY_QUESTION));
            assert_eq!(s.dense_answer_text, format!(" {}.", s.expected.answer));
        } else {
            assert!(prompt.contains(&s.expected.answer));
        }
    }
    let acc = calib::accuracy(&build(&cfg(1)));
    assert_eq!(acc.len(), 4);
    assert!(acc.iter().all(|a| a.correct == a.total && a.total > 0));
}

#[test]
fn jsonl_round_trip() {
    let samples = build(&cfg(2));
    let dir = tiny::tmp("calib-jsonl");
    let path = dir.join("calib.jsonl");
    calib::write_jsonl(&path, &samples).unwrap();
    let back = calib::read_jsonl(&path).unwrap();
    assert_eq!(back, samples);
    // Each line has the documented keys.
    let text = std::fs::read_to_string(&path).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for key in [
        "id",
        "task",
        "length_level",
        "prompt_tokens",
        "response_tokens",
        "n_tokens",
        "response_span",
        "source",
        "seed",
        "dense_answer_text",
        "expected",
    ] {
        assert!(first.get(key).is_some(), "missing {key}");
    }
    // A broken line is reported with its number.
    let bad = dir.join("bad.jsonl");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[1] = lines[1].replace("\"n_tokens\":", "\"n_tokens\":1");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let err = calib::read_jsonl(&bad).unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn pass_key_sits_at_the_requested_depth() {
    let pool = TextSource::Generated.sentences(3).unwrap();
    let intro = PASSKEY_INTRO.len();
    for (k, depth) in [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
        .into_iter()
        .enumerate()
    {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(k as u64);
        let p = calib::passkey_prompt(&pool, &Bytes, &mut rng, 2000, depth).unwrap();
        assert!(p.tokens.len() <= 2000);
        let text = Bytes.decode(&p.tokens).unwrap();
        let needle = passkey_needle(&p.expected.answer);
        let at = p.expected.needle_token.unwrap();
        // The recorded token index is where the needle begins (after a separating space).
        assert!(
            text[at..].trim_start().starts_with(&needle),
            "depth {depth}"
        );
        let filler = text.len() - intro - needle.len() - PASSKEY_QUESTION.len();
        let want = intro as f64 + depth * filler as f64;
        // Within one sentence of the requested depth (generated sentences are < 90 bytes).
        assert!(
            (at as f64 - want).abs() <= 90.0,
            "depth {depth}: needle at {at}, wanted about {want:.0}"
        );
        assert_eq!(p.expected.answer.len(), 5);
    }
}

#[test]
fn tiny_model_answers_through_its_tokenizer() {
    let w = tiny(21, true);
    let dir = tiny::tmp("calib-tiny");
    let gguf = dir.join("tiny.gguf");
    w.write_gguf(&gguf, |_, _| {});
    let tok = ModelTokenizer::load(&gguf).unwrap();
    let model = Model::load(&gguf).unwrap();
    let eos = model.special.eos.clone();
    let reference = CpuReference::from_model(model).unwrap();
    let mut answer = |p: &[u32], n: usize| -> Result<Vec<u32>, CalibError> {
        let mut out = reference.generate(p, n, Masking::Dense, &eos)?;
        if out.is_empty() {
            out.extend(eos.first().copied());
        }
        Ok(out)
    };
    let cfg = CalibConfig {
        lengths: vec![512],
        samples: 3,
        seed: 5,
        source: TextSource::Generated,
        passkey_source: TextSource::Repeat,
        max_new_tokens: 8,
        text_samples: 0,
        text_scored: 256,
    };
    let mut seen = 0;
    let samples =
        calib::build_samples(&cfg, &tok, &mut answer, &mut |i, _, _| seen = seen.max(i)).unwrap();
    assert_eq!(seen, 3);
    for s in &samples {
        s.check().unwrap();
        assert!(s.n_tokens <= 512);
        assert!(s.response_tokens.len() <= 8);
        assert_eq!(
            tok.decode(&s.response_tokens, false).unwrap(),
            s.dense_answer_text
        );
    }
}

#[test]
fn quote_names_one_sentence_of_the_document() {
    let pool = TextSource::Generated.sentences(5).unwrap();
    for (k, depth) in [0.0, 0.3, 0.6, 0.99].into_iter().enumerate() {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(k as u64);
        let p = calib::quote_prompt(&pool, &Bytes, &mut rng, 3000, depth).unwrap();
        assert!(p.tokens.len() <= 3000);
        let text = Bytes.decode(&p.tokens).unwrap();
        let (doc, question) = text.split_once("End of document.").unwrap();
        let prefix = question.split_once(": ").unwrap().1;
        assert!(prefix.split_whitespace().count() >= calib::QUOTE_PREFIX_WORDS);
        // The prefix names exactly one sentence, the prompt ends with it opened as a quote,
        // and the expected answer completes that sentence.
        assert_eq!(doc.matches(prefix).count(), 1, "depth {depth}");
        assert!(text.ends_with(&format!(": {prefix}")));
        let at = p.expected.needle_token.unwrap();
        let full = format!("{prefix} {}", p.expected.answer);
        assert!(text[at..].trim_start().starts_with(&full), "depth {depth}");
        // Deeper requests quote later sentences.
        let rel = at as f64 / doc.len() as f64;
        assert!((rel - depth).abs() < 0.2, "depth {depth}: at {rel:.2}");
    }
}

#[test]
fn filler_avoids_the_needle_words() {
    // Python's documentation talks about the `pass` statement and dictionary keys; those
    // sentences competed with the needle (docs/CALIBRATION.md).
    assert!(calib::text::mentions_needle_words(
        "The pass statement does nothing."
    ));
    assert!(calib::text::mentions_needle_words(
        "Dictionaries are indexed by keys."
    ));
    assert!(!calib::text::mentions_needle_words(
        "Lists are mutable sequences."
    ));
}

/// `text` samples: running text of the source whose last tokens are the response (no model
/// answer asked for), after the retrieval samples, which they leave unchanged; left out of
/// the dense accuracy.
#[test]
fn text_samples_score_the_texts_own_last_tokens() {
    let base = cfg(7);
    let with_text = CalibConfig {
        text_samples: 2,
        text_scored: 100,
        ..base.clone()
    };
    let plain = build(&base);
    let mut asked = 0;
    let mut counting = |p: &[u32], n: usize| {
        asked += 1;
        oracle(p, n)
    };
    let all = calib::build_samples(&with_text, &Bytes, &mut counting, &mut |_, _, _| {}).unwrap();
    assert_eq!(asked, plain.len(), "text samples ask the model nothing");
    assert_eq!(all.len(), plain.len() + 2 * base.lengths.len());
    let retrieval: Vec<_> = all.iter().filter(|s| s.task != "text").cloned().collect();
    assert_eq!(retrieval, plain);
    for &n in &base.lengths {
        let texts: Vec<_> = all
            .iter()
            .filter(|s| s.task == "text" && s.length_level == n)
            .collect();
        assert_eq!(texts.len(), 2);
        assert_ne!(texts[0].prompt_tokens, texts[1].prompt_tokens);
        let ids: Vec<_> = texts.iter().map(|s| s.id.clone()).collect();
        assert_eq!(ids, [format!("text-{n}-6"), format!("text-{n}-7")]);
        for s in texts {
            s.check().unwrap();
            assert_eq!(s.response_tokens.len(), 100);
            // Whole sentences up to the length: short of it by less than one sentence.
            assert!(s.n_tokens <= n as usize && 2 * s.n_tokens > n as usize);
            // The response is the text's own continuation: prompt ++ response is one text.
            let whole = Bytes.decode(&s.tokens()).unwrap();
            assert!(!whole.contains("pass key") && !whole.contains("Document:"));
            assert_eq!(
                s.dense_answer_text,
                Bytes.decode(&s.response_tokens).unwrap()
            );
        }
    }
    assert!(calib::accuracy(&all).iter().all(|a| a.task != "text"));
}
