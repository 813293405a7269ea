//! A text codec with one token per byte, so the calibration and eval tests can reason
//! about lengths in tokens without a tokenizer.
#![allow(dead_code)]

use moa::calib::{CalibError, TextCodec};

/// One token per byte (ids 0..=255).
pub struct Bytes;

impl TextCodec for Bytes {
    fn encode(&self, text: &str) -> Result<Vec<u32>, CalibError> {
        Ok(text.bytes().map(u32::from).collect())
    }
    fn decode(&self, ids: &[u32]) -> Result<String, CalibError> {
        Ok(String::from_utf8_lossy(&ids.iter().map(|&i| i as u8).collect::<Vec<_>>()).into())
    }
}
