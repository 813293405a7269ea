//! Scores already computed, kept in a TSV file so an interrupted validation resumes where
//! it stopped (a 4k-token sample costs about a minute per plan on two cores).
//!
//! A row is keyed by what determines the score: the masking (`dense`, or the sha256 of the
//! plan's canonical TOML, so a renamed file still hits and an edited one misses) and the
//! sample id. The model is not in the key: one cache file belongs to one model (the
//! pipeline keeps it in the model's work folder).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::SampleScore;
use crate::plan::Plan;

const HEADER: &str = "masking\tsample\tloss\tagree\tn_response";

pub struct ScoreCache {
    path: Option<PathBuf>,
    rows: HashMap<(String, String), SampleScore>,
}

/// The cache key of a masking: `dense` or `plan:` + 16 hex digits of the plan's sha256.
pub fn masking_key(plan: Option<&Plan>) -> String {
    match plan {
        None => "dense".into(),
        Some(p) => {
            let digest = Sha256::digest(p.to_toml().as_bytes());
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("plan:{hex}")
        }
    }
}

impl ScoreCache {
    /// No file: scores live only as long as the value.
    pub fn in_memory() -> ScoreCache {
        ScoreCache {
            path: None,
            rows: HashMap::new(),
        }
    }

    /// Reads `path` if it exists (rows that do not parse are an error naming the line).
    pub fn open(path: &Path) -> Result<ScoreCache, String> {
        let mut rows = HashMap::new();
        if path.exists() {
            let text =
                crate::input::read_to_string(path, "score cache", crate::input::MAX_DATA_BYTES)
                    .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
            for (i, line) in text.lines().enumerate().skip(1) {
                let bad = || {
                    format!(
                        "`{}` line {}: expected `{HEADER}`, found `{line}` (delete the file \
                         to start over)",
                        path.display(),
                        i + 1
                    )
                };
                let f: Vec<&str> = line.split('\t').collect();
                let [key, sample, loss, agree, n] = f.as_slice() else {
                    return Err(bad());
                };
                let score = SampleScore {
                    sample_id: sample.to_string(),
                    loss: loss.parse().map_err(|_| bad())?,
                    agree: agree.parse().map_err(|_| bad())?,
                    n_response: n.parse().map_err(|_| bad())?,
                };
                rows.insert((key.to_string(), sample.to_string()), score);
            }
        }
        Ok(ScoreCache {
            path: Some(path.to_path_buf()),
            rows,
        })
    }

    pub fn get(&self, key: &str, sample_id: &str) -> Option<&SampleScore> {
        self.rows.get(&(key.to_string(), sample_id.to_string()))
    }

    /// Records a score (appended to the file at once, so a kill loses at most one).
    pub fn put(&mut self, key: &str, score: SampleScore) -> Result<(), String> {
        if let Some(path) = &self.path {
            let new = !path.exists();
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
            let mut line = String::new();
            if new {
                line.push_str(HEADER);
                line.push('\n');
            }
            line.push_str(&format!(
                "{key}\t{}\t{}\t{}\t{}\n",
                score.sample_id, score.loss, score.agree, score.n_response
            ));
            f.write_all(line.as_bytes())
                .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        }
        self.rows
            .insert((key.to_string(), score.sample_id.clone()), score);
        Ok(())
    }
}
