//! Calibration samples made directly from token ids (no tokenizer, no dense answer), for
//! the profiling and validation tests.
#![allow(dead_code)]

use moa::calib::{CalibSample, Expected};

/// A sample whose last `answer` tokens are the response, built for length `level`.
pub fn sample(id: &str, tokens: Vec<u32>, answer: usize, level: u32) -> CalibSample {
    let split = tokens.len() - answer;
    CalibSample {
        id: id.into(),
        task: "passkey".into(),
        length_level: level,
        prompt_tokens: tokens[..split].to_vec(),
        response_tokens: tokens[split..].to_vec(),
        n_tokens: tokens.len(),
        response_span: [split, tokens.len()],
        source: "test".into(),
        seed: 0,
        dense_answer_text: String::new(),
        expected: Expected {
            answer: String::new(),
            correct: true,
            depth: None,
            needle_token: None,
        },
    }
}
