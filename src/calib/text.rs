//! Filler text: natural prose from Debian's `python3-doc` (the reStructuredText sources of
//! the Python documentation, PSF licence), or a seeded sentence generator (no files, for
//! tests and CI, which install no Debian packages). docs/CALIBRATION.md names both.

#![warn(missing_docs)]

use std::path::PathBuf;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::CalibError;

/// Where filler sentences come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextSource {
    /// `/usr/share/doc/python3*/html/_sources/{tutorial,faq,howto}` (package `python3-doc`).
    PythonDoc,
    /// [`generated_sentences`]: deterministic, needs nothing installed.
    Generated,
    /// The classic pass-key filler (Landmark Attention, LongEval): five short sentences
    /// repeated. The needle stands out of it; dense SmolLM2-135M finds keys in it where it
    /// drifts off in natural text (docs/CALIBRATION.md).
    Repeat,
}

/// The five sentences of [`TextSource::Repeat`].
pub const REPEAT_FILLER: [&str; 5] = [
    "The grass is green.",
    "The sky is blue.",
    "The sun is yellow.",
    "Here we go.",
    "There and back again.",
];

impl TextSource {
    /// The source named `s` on the command line (`python-doc`, `generated` or `repeat`);
    /// [`CalibError::Invalid`] for any other name.
    pub fn parse(s: &str) -> Result<TextSource, CalibError> {
        match s {
            "python-doc" => Ok(TextSource::PythonDoc),
            "generated" => Ok(TextSource::Generated),
            "repeat" => Ok(TextSource::Repeat),
            other => Err(CalibError::Invalid(format!(
                "unknown text source `{other}`: expected python-doc, generated or repeat"
            ))),
        }
    }

    /// The name recorded in each sample's `source` field.
    pub fn name(self) -> &'static str {
        match self {
            TextSource::PythonDoc => "python3-doc (PSF licence)",
            TextSource::Generated => "generated (seeded sentence generator)",
            TextSource::Repeat => "repeat (the five classic pass-key filler sentences)",
        }
    }

    /// A pool of sentences (at least a few thousand tokens' worth).
    pub fn sentences(self, seed: u64) -> Result<Vec<String>, CalibError> {
        match self {
            TextSource::PythonDoc => python_doc_sentences(),
            TextSource::Generated => Ok(generated_sentences(seed, 4000)),
            TextSource::Repeat => Ok(REPEAT_FILLER
                .iter()
                .cycle()
                .take(4000)
                .map(|s| s.to_string())
                .collect()),
        }
    }
}

/// The folder of the documentation sources, or an error that says what to install.
pub fn python_doc_dir() -> Result<PathBuf, CalibError> {
    let mut candidates = vec![PathBuf::from("/usr/share/doc/python3/html/_sources")];
    if let Ok(rd) = std::fs::read_dir("/usr/share/doc") {
        let mut v: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("python3."))
            })
            .map(|p| p.join("html/_sources"))
            .collect();
        v.sort();
        candidates.extend(v);
    }
    candidates
        .into_iter()
        .find(|p| p.join("tutorial").is_dir())
        .ok_or_else(|| {
            CalibError::MissingSource(
                "the Python documentation sources are not installed (looked for \
                 /usr/share/doc/python3/html/_sources/tutorial): run \
                 `apt-get install python3-doc`, or use --source generated"
                    .into(),
            )
        })
}

fn python_doc_sentences() -> Result<Vec<String>, CalibError> {
    let dir = python_doc_dir()?;
    let mut files = Vec::new();
    for sub in ["tutorial", "faq", "howto"] {
        let d = dir.join(sub);
        let rd = std::fs::read_dir(&d).map_err(|e| CalibError::Io {
            path: d.display().to_string(),
            action: "list the folder",
            source: e,
        })?;
        files.extend(rd.filter_map(|e| e.ok().map(|e| e.path())));
    }
    // read_dir order is not defined: sort so the pool (and every sample) is reproducible.
    files.sort();
    let mut out = Vec::new();
    for f in files
        .iter()
        .filter(|f| f.to_string_lossy().ends_with(".txt"))
    {
        let text = std::fs::read_to_string(f).map_err(|e| CalibError::Io {
            path: f.display().to_string(),
            action: "read",
            source: e,
        })?;
        // "pass" is a Python keyword: sentences about it compete with the pass-key needle
        // (dense SmolLM2 continued "The pass key is" with "a special syntax in Python...").
        out.extend(
            prose_sentences(&text)
                .into_iter()
                .filter(|s| !mentions_needle_words(s)),
        );
    }
    if out.len() < 100 {
        return Err(CalibError::MissingSource(format!(
            "too little prose under {} ({} sentences)",
            dir.display(),
            out.len()
        )));
    }
    Ok(out)
}

/// Does a filler sentence use the words of the pass-key needle ("pass", "key")?
pub fn mentions_needle_words(sentence: &str) -> bool {
    let lower = sentence.to_ascii_lowercase();
    lower.contains("pass") || lower.contains("key")
}

/// Prose sentences of a reStructuredText file: paragraphs that are not directives, code
/// or headings, joined and split at sentence ends; markup-heavy sentences are dropped so
/// the filler reads like text.
pub fn prose_sentences(rst: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut para = String::new();
    let flush = |para: &mut String, out: &mut Vec<String>| {
        for s in split_sentences(para) {
            let ok_chars = s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " ,.;:'!?()-\"".contains(c));
            if ok_chars && (40..=300).contains(&s.len()) && !s.contains("::") {
                out.push(s);
            }
        }
        para.clear();
    };
    for line in rst.lines() {
        let t = line.trim();
        let markup = t.starts_with("..")
            || t.starts_with(">>>")
            || t.starts_with('*')
            || t.starts_with('=')
            || t.starts_with('-')
            || t.starts_with('+')
            || t.starts_with('|')
            || line.starts_with("   ");
        if t.is_empty() || markup {
            flush(&mut para, &mut out);
            continue;
        }
        if !para.is_empty() {
            para.push(' ');
        }
        para.push_str(t);
    }
    flush(&mut para, &mut out);
    out
}

fn split_sentences(p: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let words: Vec<&str> = p.split_whitespace().collect();
    for w in words {
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
        if w.ends_with('.') || w.ends_with('?') || w.ends_with('!') {
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

/// `n` grammatical nonsense sentences from small word lists, reproducible by `seed`.
pub fn generated_sentences(seed: u64, n: usize) -> Vec<String> {
    const SUBJ: &[&str] = &[
        "The old farmer",
        "A quiet river",
        "The young teacher",
        "Every traveller",
        "The small village",
        "A patient gardener",
        "The northern wind",
        "Our neighbour",
        "The library clerk",
        "A grey horse",
    ];
    const VERB: &[&str] = &[
        "walks past",
        "remembers",
        "looks at",
        "waits beside",
        "talks about",
        "sings near",
        "paints",
        "repairs",
        "counts",
        "follows",
    ];
    const OBJ: &[&str] = &[
        "the green hills",
        "an empty road",
        "the wooden bridge",
        "a basket of apples",
        "the evening market",
        "the stone wall",
        "a long letter",
        "the harbour lights",
        "a field of wheat",
        "the narrow stairs",
    ];
    const TAIL: &[&str] = &[
        "before the sun goes down",
        "on a cold morning",
        "while the bells ring",
        "after a long day",
        "without saying a word",
        "as the rain begins",
        "in the middle of summer",
        "every second week",
    ];
    let mut rng = StdRng::seed_from_u64(seed);
    let pick = |rng: &mut StdRng, l: &[&str]| l[rng.random_range(0..l.len())].to_string();
    (0..n)
        .map(|_| {
            // A year first: sentence openings must vary, or the quote task cannot name a
            // sentence by its first words.
            let year = rng.random_range(1700..2000);
            format!(
                "In {year}, {} {} {} {}.",
                pick(&mut rng, SUBJ).to_lowercase(),
                pick(&mut rng, VERB),
                pick(&mut rng, OBJ),
                pick(&mut rng, TAIL)
            )
        })
        .collect()
}
