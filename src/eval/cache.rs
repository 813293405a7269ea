//! Scores already computed, kept in a TSV file so an interrupted validation resumes where
//! it stopped (a 4k-token sample costs about a minute per plan on two cores).
//!
//! A row is keyed by what determines the score: the masking (`dense`, or the sha256 of the
//! plan's canonical TOML, so a renamed file still hits and an edited one misses) and the
//! sample (`validate` writes `<id>@<16 hex digits of CalibSample::fingerprint>`, so a
//! calibration made again under the same ids misses). The model is not in the key: one cache file belongs to one model (the
//! pipeline keeps it in the model's work folder, which records its model in `model.txt`
//! and refuses another).

#![warn(missing_docs)]

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::SampleScore;
use crate::plan::Plan;

const HEADER: &str = "masking\tsample\tloss\tagree\tn_response";

/// Scores keyed by (masking key, sample key), backed by a TSV file (`masking`, `sample`,
/// `loss`, `agree`, `n_response` columns) or held in memory only.
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
    /// Every row is written with its newline, so a last line without one was cut by a
    /// kill: it is dropped (with a note on stderr) and cut from the file, so that the next
    /// row appended does not land on it; the rows before it are kept. A header line is
    /// skipped wherever it stands: two runs that both found no file before session 26
    /// each wrote one (`masking…` on line 3 was then refused as a malformed row, so the
    /// cache had to be deleted); [`Self::put`] now writes it once.
    pub fn open(path: &Path) -> Result<ScoreCache, String> {
        let mut rows = HashMap::new();
        if path.exists() {
            let mut text =
                crate::input::read_to_string(path, "score cache", crate::input::MAX_DATA_BYTES)
                    .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
            if !text.is_empty() && !text.ends_with('\n') {
                let keep = text.rfind('\n').map_or(0, |i| i + 1);
                eprintln!(
                    "note: `{}`: the last line `{}` has no newline (a run was stopped while \
                     writing it); dropped, its score is computed again",
                    path.display(),
                    &text[keep..]
                );
                let cut = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_len(keep as u64));
                cut.map_err(|e| format!("cannot cut the last line of `{}`: {e}", path.display()))?;
                text.truncate(keep);
            }
            for (i, line) in text.lines().enumerate() {
                if line == HEADER {
                    continue;
                }
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

    /// The cached score of masking `key` (as [`validate`](super::validate) writes it:
    /// `<backend>:` + [`masking_key`]) on sample `sample_id` (`<id>@<fingerprint>`, see
    /// [`SampleScore::sample_id`]), if any.
    pub fn get(&self, key: &str, sample_id: &str) -> Option<&SampleScore> {
        self.rows.get(&(key.to_string(), sample_id.to_string()))
    }

    /// Records a score (appended to the file at once, so a kill loses at most one). The
    /// first row of a new file comes after its header, written by `write_header`: once,
    /// whatever number of runs append to the file at once.
    pub fn put(&mut self, key: &str, score: SampleScore) -> Result<(), String> {
        if let Some(path) = &self.path {
            let cannot = |e: std::io::Error| format!("cannot write `{}`: {e}", path.display());
            let headed = write_header(path).map_err(cannot)?;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(cannot)?;
            let mut line = String::new();
            if !headed {
                line.push_str(HEADER);
                line.push('\n');
            }
            line.push_str(&format!(
                "{key}\t{}\t{}\t{}\t{}\n",
                score.sample_id, score.loss, score.agree, score.n_response
            ));
            // One write of an append-mode file: lines of runs appending at once do not mix.
            f.write_all(line.as_bytes()).map_err(cannot)?;
        }
        self.rows
            .insert((key.to_string(), score.sample_id.clone()), score);
        Ok(())
    }
}

/// Makes `path` start with the header unless it holds something already. The header is
/// written whole into a temporary of this writer's own (`<path>.header-<pid>-<n>`), then
/// hard-linked to `path`, which fails if `path` exists: of two runs that both find no
/// file (`moa validate` runs sharing a `--cache`, or two pipelines on one work folder),
/// one makes it and the other appends to it. Both used to append a header of their own.
/// An empty file (one whose cut header [`ScoreCache::open`] dropped) gets the header in
/// place under a file lock ([`header_into_empty`]); where there are no locks it is replaced
/// by the temporary with a rename (two runs that both find it empty may then lose the row
/// one appended between their renames: a cache miss, scored again, never a second header). Returns false where the file system has no hard links and
/// the file is new or empty: the caller then writes the header with its row, as before
/// (two such runs at once may each write one; [`ScoreCache::open`] skips a repeat).
fn write_header(path: &Path) -> std::io::Result<bool> {
    let empty = match std::fs::metadata(path) {
        Ok(m) if m.len() > 0 => return Ok(true),
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    // An empty file: the header is written into it in place, under an exclusive lock,
    // if it is still empty then. Replacing it by a rename (below, where there are no file
    // locks) lost the rows other writers had appended to the replaced file between two
    // renames (session 30: 11 of 31 lines left, `user_round15`'s race test on a loaded
    // machine).
    if empty {
        if let Some(headed) = header_into_empty(path)? {
            return Ok(headed);
        }
    }
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".header-{}-{n}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, format!("{HEADER}\n"))?;
    let placed = if empty {
        std::fs::rename(&tmp, path)
    } else {
        std::fs::hard_link(&tmp, path)
    };
    let _ = std::fs::remove_file(&tmp);
    match placed {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(true),
        // No hard links here (some network and FUSE file systems): the file is still new,
        // or empty, and the caller writes the header.
        Err(_) if std::fs::metadata(path).map_or(true, |m| m.len() == 0) => Ok(false),
        Err(_) => Ok(true),
    }
}

/// Writes the header into the existing `path` if it is empty, holding an exclusive lock
/// on it meanwhile (std's [`std::fs::File::lock`]: `flock` on Unix, `LockFileEx` on
/// Windows), so that of writers that all found it empty one writes the header and the
/// others see it. Rows are appended only after a writer's header check, so none can come
/// before it. `Ok(None)` where the file system takes no locks (the caller then replaces the
/// file as before).
fn header_into_empty(path: &Path) -> std::io::Result<Option<bool>> {
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    if f.lock().is_err() {
        return Ok(None);
    }
    if f.metadata()?.len() == 0 {
        f.write_all(format!("{HEADER}\n").as_bytes())?;
    }
    Ok(Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(id: &str, loss: f64) -> SampleScore {
        SampleScore {
            sample_id: id.into(),
            loss,
            agree: 5,
            n_response: 7,
        }
    }

    /// A last line cut by a kill is dropped and cut from the file, the rows before it are
    /// kept, and the next row appended lands on a line of its own; a malformed line in the
    /// middle stays an error naming the file and line.
    #[test]
    fn a_cut_last_line_is_dropped_and_a_bad_middle_line_refused() {
        let dir = std::env::temp_dir().join(format!("moa-score-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("scores.tsv");
        let _ = std::fs::remove_file(&path);
        let mut c = ScoreCache::open(&path).unwrap();
        c.put("dense", score("a", 1.5)).unwrap();
        c.put("dense", score("b", 2.5)).unwrap();
        let whole = std::fs::read_to_string(&path).unwrap();
        // Cut inside the last row's last field: it would parse, with a wrong count.
        std::fs::write(&path, &whole[..whole.len() - 2]).unwrap();
        let mut c = ScoreCache::open(&path).unwrap();
        assert_eq!(c.get("dense", "a").map(|s| s.loss), Some(1.5));
        assert!(c.get("dense", "b").is_none());
        c.put("dense", score("c", 3.5)).unwrap();
        let c = ScoreCache::open(&path).unwrap();
        assert!(c.get("dense", "a").is_some() && c.get("dense", "c").is_some());
        // A cut header alone: the file is emptied and the header written again.
        std::fs::write(&path, &HEADER[..5]).unwrap();
        let mut c = ScoreCache::open(&path).unwrap();
        c.put("dense", score("d", 4.5)).unwrap();
        let c = ScoreCache::open(&path).unwrap();
        assert_eq!(c.get("dense", "d").map(|s| s.loss), Some(4.5));
        // A malformed row in the middle is refused, naming file and line.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            format!("{HEADER}\nbroken\n{}", &text[HEADER.len() + 1..]),
        )
        .unwrap();
        let e = ScoreCache::open(&path).err().unwrap();
        assert!(e.contains("scores.tsv") && e.contains("line 2"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
