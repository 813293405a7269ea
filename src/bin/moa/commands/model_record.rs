//! The record of the model whose results a folder stores (`model.txt`): the pipeline's
//! work folder (its calibration, profiles and scores) and `moa profile -o DIR` (its sample
//! tiles). Stored results are keyed by the sample's tokens and the model's shape, not by
//! its weights, so two models of one shape given the same folder shared them, saying only
//! "reusing". The first run records the model; a later run with another is refused,
//! naming both.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The file in a folder that records the model its stored results are of.
pub const MODEL_RECORD: &str = "model.txt";

/// Bytes read from each end of a weight file for [`model_fingerprint`]: enough for a
/// GGUF's or safetensors' header and the first and last tensor bytes, read in
/// milliseconds even for a 15 GB model.
const FINGERPRINT_END_BYTES: u64 = 1 << 20;

/// A fingerprint of the model at `path` (sha256, hex): for a GGUF file its size and its
/// first and last [`FINGERPRINT_END_BYTES`] (not its name); for a Hugging Face folder, of each file that
/// changes what the model computes or how it tokenizes ([`super::is_model_file`]: the
/// configs, tokenizer files, safetensors index and `*.safetensors`, sorted by name) its
/// name, size and both ends. The path is
/// not in it: a model moved or renamed is the same model. Two random models of one shape
/// and different seeds differ in their first tensor bytes.
///
/// `file_name` hashes a GGUF's name too, as moa did before session 25: a record made then
/// is still accepted (and rewritten) for the same file under the same name.
fn model_fingerprint(path: &Path, file_name: bool) -> anyhow::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::{Read, Seek, SeekFrom};
    let mut h = Sha256::new();
    // A folder's file names are part of the model (`config.json`, the shards); a GGUF's
    // own name is not: hashing it refused the same GGUF renamed or copied.
    let mut add = |file: &Path, named: bool| -> anyhow::Result<()> {
        let mut read = || -> std::io::Result<()> {
            let mut f = std::fs::File::open(file)?;
            let len = f.metadata()?.len();
            if named {
                h.update(file.file_name().map_or(&[][..], |n| n.as_encoded_bytes()));
            }
            h.update(len.to_le_bytes());
            let mut buf = Vec::new();
            (&mut f).take(FINGERPRINT_END_BYTES).read_to_end(&mut buf)?;
            if len > FINGERPRINT_END_BYTES {
                f.seek(SeekFrom::Start(
                    len.saturating_sub(FINGERPRINT_END_BYTES)
                        .max(FINGERPRINT_END_BYTES),
                ))?;
                f.read_to_end(&mut buf)?;
            }
            h.update(&buf);
            Ok(())
        };
        read().with_context(|| format!("cannot read `{}`", file.display()))
    };
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot read `{}`", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(super::is_model_file)
            })
            .collect();
        files.sort();
        for f in &files {
            add(f, true)?;
        }
    } else {
        add(path, file_name)?;
    }
    Ok(format!("{:x}", h.finalize()))
}

/// The model a command runs: a GGUF file or Hugging Face folder, or the random weights
/// `--like SHAPE` makes in memory (seed 0: the same weights every run).
#[derive(Clone, Copy)]
pub enum ModelId<'a> {
    Path(&'a Path),
    Like(&'a str),
}

/// What a folder holds and how a refusal says the way out.
pub struct FolderKind {
    /// "work folder", "profile folder".
    pub what: &'static str,
    /// What of the model the folder stores ("calibration, profiles and scores").
    pub holds: &'static str,
    /// The command that writes and checks it.
    pub command: &'static str,
    /// The way to a folder of its own ("give another --workdir ...").
    pub other: &'static str,
    /// A file or folder an earlier moa left without a record (the folder has results).
    pub legacy: &'static str,
}

/// `moa pipeline --workdir`.
pub const WORK_FOLDER: FolderKind = FolderKind {
    what: "work folder",
    holds: "calibration, profiles and scores",
    command: "moa pipeline",
    other: "give another --workdir (without one, each model gets runs/<its name>)",
    legacy: "calib.jsonl",
};

/// `moa profile -o`.
pub const PROFILE_FOLDER: FolderKind = FolderKind {
    what: "profile folder",
    holds: "stored sample tiles (samples/) and profiles",
    command: "moa profile",
    other: "give another -o",
    legacy: "samples",
};

/// A record checked against the folder's, to write once the folder exists
/// ([`Self::write`]).
#[must_use = "the record is written by `write`"]
pub struct Pending {
    file: PathBuf,
    text: Option<String>,
    note: Option<String>,
}

impl Pending {
    /// Writes the record (whole: temporary + rename, so processes sharing the folder, such
    /// as `moa profile --shard` jobs, never read a cut one) when the folder had none or the
    /// model moved; prints the note about a folder an earlier moa made.
    pub fn write(self) -> anyhow::Result<()> {
        if let Some(note) = &self.note {
            eprintln!("{note}");
        }
        match &self.text {
            Some(t) => super::write_whole(&self.file, t.as_bytes()),
            None => Ok(()),
        }
    }
}

/// Checks the model recorded in `folder` ([`MODEL_RECORD`]: a path and a
/// [`model_fingerprint`]) against `model`, before any work: another model (its fingerprint
/// differs) is refused, naming both; the same model moved or copied is accepted and the
/// record follows it. A folder with no record gets this run's model ([`Pending::write`]),
/// with a note when an earlier moa left results there (`kind.legacy`). Reads the model's
/// configs, tokenizer and both ends of each weight file (milliseconds), no tensor.
pub fn check(folder: &Path, model: ModelId, kind: &FolderKind) -> anyhow::Result<Pending> {
    let file = folder.join(MODEL_RECORD);
    let (shown, fingerprint) = match model {
        ModelId::Path(p) => {
            let shown = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            (shown.display().to_string(), model_fingerprint(p, false)?)
        }
        ModelId::Like(shape) => {
            use sha2::{Digest, Sha256};
            let id = format!("random --like {shape} (seed 0)");
            let fingerprint = format!("{:x}", Sha256::digest(id.as_bytes()));
            (id, fingerprint)
        }
    };
    let text = format!(
        "# the model this {}'s {} are of ({} refuses another)\npath {shown}\nfingerprint \
         {fingerprint}\n",
        kind.what, kind.holds, kind.command
    );
    if file.exists() {
        let have = moa::input::read_to_string(&file, "model record", moa::input::MAX_TEXT_BYTES)
            .with_context(|| format!("cannot read `{}`", file.display()))?;
        let field = |key: &str| {
            have.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
                .map(str::to_string)
        };
        let (Some(path), Some(had)) = (field("path"), field("fingerprint")) else {
            bail!(
                "`{}` is not a model record (expected lines `path ...` and `fingerprint \
                 ...`): delete it to record this run's model `{shown}`",
                file.display(),
            );
        };
        let legacy = || match model {
            ModelId::Path(p) if p.is_file() => model_fingerprint(p, true).ok(),
            _ => None,
        };
        let old_form = had != fingerprint && legacy().is_some_and(|l| l == had);
        if had != fingerprint && !old_form {
            bail!(
                "the {} `{}` was made for the model `{path}` (`{}`), and this run's \
                 model is `{shown}`, which differs from it (another file, or that one \
                 changed): its {} are of that model; {}, or delete `{}` to start over",
                kind.what,
                folder.display(),
                file.display(),
                kind.holds,
                kind.other,
                folder.display()
            );
        }
        // The same model moved or renamed: the record follows it.
        let moved = path != shown || old_form;
        return Ok(Pending {
            file,
            text: moved.then_some(text),
            note: None,
        });
    }
    // Made before moa recorded the model: nothing says whose it is.
    let note = folder.join(kind.legacy).exists().then(|| {
        format!(
            "   note: `{}` has no {MODEL_RECORD} (made by an earlier moa): recording `{shown}` \
             as its model; if its {} are another model's, delete the folder",
            folder.display(),
            kind.holds
        )
    });
    Ok(Pending {
        file,
        text: Some(text),
        note,
    })
}
