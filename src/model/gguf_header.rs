//! A bounded check of a GGUF header before candle parses it, so that a damaged or hostile
//! file gets an error naming the header field, metadata key or tensor at fault, and never
//! a panic (candle divides by `general.alignment`, so 0 there would panic) or an
//! allocation sized by the file's own claims.
//!
//! Layout (GGUF spec, github.com/ggml-org/ggml docs/gguf.md): magic `GGUF`, version
//! (1–3), tensor count, metadata count (u32 in v1, u64 after), then `metadata_kv_count`
//! entries (key string, value type u32, value) and `tensor_count` tensor infos (name, n_dims
//! u32, dims (u32 in v1, u64 after), ggml type u32, offset u64). Strings are a length then
//! bytes. Every length and count is checked against the bytes left in the file before
//! anything is read or allocated.

#![warn(missing_docs)]

use std::collections::HashSet;
use std::io::{BufReader, Read, Seek, SeekFrom};

/// Deepest array nesting accepted (real files use 1; candle allows 64).
const MAX_ARRAY_DEPTH: usize = 8;
/// Longest metadata key accepted (llama.cpp's keys are under 100 bytes).
const MAX_KEY_BYTES: u64 = 65_535;
/// Most dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
const MAX_DIMS: u32 = 4;
/// ggml type ids moa reads (candle's `qtensor_from_ggml` or `model::quant`), with their
/// llama.cpp names. Q8_1 and Q8_K are left out: candle knows them but cannot load them
/// from a file ("not supported yet", found only once the weights load).
const GGML_TYPES: &[(u32, &str)] = &[
    (0, "F32"),
    (1, "F16"),
    (30, "BF16"),
    (2, "Q4_0"),
    (3, "Q4_1"),
    (6, "Q5_0"),
    (7, "Q5_1"),
    (8, "Q8_0"),
    (10, "Q2_K"),
    (11, "Q3_K"),
    (12, "Q4_K"),
    (13, "Q5_K"),
    (14, "Q6_K"),
];

/// Values per block of a type of [`GGML_TYPES`] (ggml's `blck_size`): 1 for the float
/// types, 32 for Q4_0 … Q8_0, 256 for the K-quants.
fn block_of(ty: u32) -> u64 {
    match ty {
        0 | 1 | 30 => 1,
        2 | 3 | 6 | 7 | 8 => 32,
        _ => 256,
    }
}

/// Names of the other ggml type ids (ggml.h's `ggml_type`), so that an error says
/// `IQ4_XS` rather than 23.
const OTHER_GGML_TYPES: &[(u32, &str)] = &[
    (9, "Q8_1"),
    (15, "Q8_K"),
    (16, "IQ2_XXS"),
    (17, "IQ2_XS"),
    (18, "IQ3_XXS"),
    (19, "IQ1_S"),
    (20, "IQ4_NL"),
    (21, "IQ3_S"),
    (22, "IQ2_S"),
    (23, "IQ4_XS"),
    (24, "I8"),
    (25, "I16"),
    (26, "I32"),
    (27, "I64"),
    (28, "F64"),
    (29, "IQ1_M"),
    (34, "TQ1_0"),
    (35, "TQ2_0"),
    (39, "MXFP4"),
];

/// A tensor whose ggml type moa does not read (an i-quant, Q8_K, an id ggml.h does not
/// name). The header check lists them instead of refusing the file, so that `moa model
/// info` can show the rest of it; `refusal` is the error of the commands that load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadableTensor {
    /// The tensor's name in the file (`blk.0.attn_q.weight`).
    pub name: String,
    /// Its place in the file's tensor index (0-based).
    pub index: u64,
    /// The ggml type id the file gives it (ggml.h's `ggml_type`).
    pub type_id: u32,
}

impl UnreadableTensor {
    /// The type by llama.cpp's name (`IQ4_XS`), or `type 77` for an id ggml.h does not name.
    pub fn type_name(&self) -> String {
        OTHER_GGML_TYPES
            .iter()
            .find(|(id, _)| *id == self.type_id)
            .map_or_else(|| format!("type {}", self.type_id), |(_, n)| n.to_string())
    }
}

/// What the header check found that does not stop a listing: the tensors moa cannot read
/// and, for each, the byte offset of its ggml type field (`GgufFile::open` reads the index
/// through candle, which refuses an unknown type, with those fields read as F32).
#[derive(Debug, Default)]
pub struct Header {
    pub unreadable: Vec<UnreadableTensor>,
    pub type_offsets: Vec<u64>,
}

/// The types moa reads, by llama.cpp's names, comma-separated.
pub fn readable_types() -> String {
    let allowed: Vec<&str> = GGML_TYPES.iter().map(|(_, n)| *n).collect();
    allowed.join(", ")
}

/// The error of a command that needs every tensor (`generate`, `eval`, a load): the first
/// unreadable tensor by name, index and type, how many others there are and of which types,
/// the types moa reads, and how to get one of them. `None` when every tensor is readable.
pub fn refusal(unreadable: &[UnreadableTensor]) -> Option<String> {
    let first = unreadable.first()?;
    let ty = first.type_id;
    let others = match unreadable.len() - 1 {
        0 => String::new(),
        n => {
            let mut types = std::collections::BTreeMap::<String, usize>::new();
            for t in &unreadable[1..] {
                *types.entry(t.type_name()).or_default() += 1;
            }
            let types: Vec<String> = types.iter().map(|(t, k)| format!("{t} x {k}")).collect();
            format!(
                " (and {n} more tensor{} moa cannot read: {})",
                if n == 1 { "" } else { "s" },
                types.join(", ")
            )
        }
    };
    // An id ggml.h does not name was "type 99 (type 99)" (round 44).
    let what = match OTHER_GGML_TYPES.iter().find(|(id, _)| *id == ty) {
        Some((_, name)) => format!("{name} (type {ty})"),
        None => format!(
            "type {ty}, an id ggml.h does not name (a damaged file, or a type newer than moa)"
        ),
    };
    Some(format!(
        "the ggml type of tensor `{}` (#{}) is {what}, which moa cannot read{others}: \
         allowed {}; re-quantize the model to one of them (e.g. llama.cpp's \
         `llama-quantize IN.gguf OUT.gguf Q4_K_M`); `moa model info` lists the file's types",
        first.name,
        first.index,
        readable_types()
    ))
}

struct Cursor<'a, R> {
    r: &'a mut R,
    pos: u64,
    size: u64,
    wide: bool,
}

impl<R: Read> Cursor<'_, R> {
    fn left(&self) -> u64 {
        self.size.saturating_sub(self.pos)
    }

    fn bytes(&mut self, n: u64, field: &dyn Fn() -> String) -> Result<Vec<u8>, String> {
        if n > self.left() {
            return Err(format!(
                "{} needs {n} bytes at offset {} but the file has only {} left",
                field(),
                self.pos,
                self.left()
            ));
        }
        let mut v = vec![0u8; n as usize];
        self.r
            .read_exact(&mut v)
            .map_err(|e| format!("{} cannot be read at offset {}: {e}", field(), self.pos))?;
        self.pos += n;
        Ok(v)
    }

    fn u32(&mut self, field: &dyn Fn() -> String) -> Result<u32, String> {
        let b = self.bytes(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, field: &dyn Fn() -> String) -> Result<u64, String> {
        let b = self.bytes(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_le_bytes(a))
    }

    /// A count or length: u32 in GGUF v1, u64 after.
    fn len(&mut self, field: &dyn Fn() -> String) -> Result<u64, String> {
        if self.wide {
            self.u64(field)
        } else {
            self.u32(field).map(u64::from)
        }
    }

    fn string(&mut self, field: &dyn Fn() -> String, max: u64) -> Result<Vec<u8>, String> {
        let n = self.len(&|| format!("the length of {}", field()))?;
        if n > max {
            return Err(format!(
                "{} has length {n}, above the {max} bytes allowed",
                field()
            ));
        }
        self.bytes(n, field)
    }

    fn skip(&mut self, n: u64, field: &dyn Fn() -> String) -> Result<(), String> {
        if n > self.left() {
            return Err(format!(
                "{} needs {n} bytes at offset {} but the file has only {} left",
                field(),
                self.pos,
                self.left()
            ));
        }
        let copied = std::io::copy(&mut (&mut *self.r).take(n), &mut std::io::sink())
            .map_err(|e| format!("{} cannot be read: {e}", field()))?;
        if copied != n {
            return Err(format!("{} is cut short by the end of the file", field()));
        }
        self.pos += n;
        Ok(())
    }

    /// Smallest number of bytes one value of a type can take (for count checks).
    fn min_size(&self, ty: u32) -> u64 {
        let len = if self.wide { 8 } else { 4 };
        match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            8 => len,
            _ => 4 + len,
        }
    }

    /// Reads one value of type `ty`; returns it when it is an integer (for
    /// `general.alignment`).
    fn value(
        &mut self,
        ty: u32,
        field: &dyn Fn() -> String,
        depth: usize,
    ) -> Result<Option<i128>, String> {
        let fixed = |c: &mut Self, n: u64| -> Result<i128, String> {
            let b = c.bytes(n, field)?;
            let mut a = [0u8; 8];
            a[..b.len()].copy_from_slice(&b);
            Ok(i128::from(u64::from_le_bytes(a)))
        };
        let signed = |v: i128, bits: u32| -> i128 {
            let shift = 128 - bits;
            (v << shift) >> shift
        };
        Ok(match ty {
            0 => Some(fixed(self, 1)?),
            1 => Some(signed(fixed(self, 1)?, 8)),
            2 => Some(fixed(self, 2)?),
            3 => Some(signed(fixed(self, 2)?, 16)),
            4 => Some(fixed(self, 4)?),
            5 => Some(signed(fixed(self, 4)?, 32)),
            10 => Some(fixed(self, 8)?),
            11 => Some(signed(fixed(self, 8)?, 64)),
            6 | 12 => {
                fixed(self, if ty == 6 { 4 } else { 8 })?;
                None
            }
            7 => {
                let b = fixed(self, 1)?;
                if b > 1 {
                    return Err(format!(
                        "{} is a bool of value {b}: allowed 0 or 1",
                        field()
                    ));
                }
                None
            }
            8 => {
                let n = self.len(&|| format!("the length of {}", field()))?;
                self.skip(n, field)?;
                None
            }
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(format!(
                        "{} nests arrays deeper than {MAX_ARRAY_DEPTH} levels",
                        field()
                    ));
                }
                let elem = self.u32(&|| format!("the element type of {}", field()))?;
                if elem > 12 {
                    return Err(format!(
                        "{} has element type {elem}: allowed 0..=12 (GGUF value types)",
                        field()
                    ));
                }
                let n = self.len(&|| format!("the length of {}", field()))?;
                let need = n.saturating_mul(self.min_size(elem));
                if need > self.left() {
                    return Err(format!(
                        "{} declares {n} elements (at least {need} bytes) but the file has only {} bytes left",
                        field(),
                        self.left()
                    ));
                }
                match elem {
                    // Fixed-size elements: skip them in one go.
                    0..=7 | 10..=12 => self.skip(n * self.min_size(elem), field)?,
                    _ => {
                        for i in 0..n {
                            self.value(elem, &|| format!("{}[{i}]", field()), depth + 1)?;
                        }
                    }
                }
                None
            }
            other => {
                return Err(format!(
                    "{} has value type {other}: allowed 0..=12 (GGUF value types)",
                    field()
                ))
            }
        })
    }
}

/// Checks the header of the GGUF file read by `reader` (positioned at its start).
/// Errors are one sentence naming the header field (`magic`, `version`, `tensor_count`,
/// `metadata_kv_count`), the metadata key (`general.alignment`, …) or the tensor at fault,
/// and the allowed range; the caller adds the path. The reader is left at the start.
/// Tensors of a type moa does not read are not an error here: they are returned in
/// [`Header::unreadable`] (their data is never read; [`refusal`] words the error).
pub fn check<R: Read + Seek>(reader: &mut BufReader<R>) -> Result<Header, String> {
    let size = reader
        .seek(SeekFrom::End(0))
        .map_err(|e| format!("cannot measure the file: {e}"))?;
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|e| format!("cannot seek: {e}"))?;
    let result = check_at(reader, size);
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|e| format!("cannot seek: {e}"))?;
    result
}

fn check_at<R: Read>(reader: &mut R, size: u64) -> Result<Header, String> {
    let mut header = Header::default();
    let mut c = Cursor {
        r: reader,
        pos: 0,
        size,
        wide: true,
    };
    let magic = c.u32(&|| "header field `magic`".to_string())?;
    if magic != 0x4655_4747 && magic != 0x4747_5546 {
        return Err(format!(
            "header field `magic` is {magic:#010x}, expected 0x46554747 (\"GGUF\"): not a GGUF file"
        ));
    }
    let version = c.u32(&|| "header field `version`".to_string())?;
    if !(1..=3).contains(&version) && (1..=3).contains(&version.swap_bytes()) {
        // llama.cpp writes big-endian files (for s390x) with the same magic bytes.
        return Err(format!(
            "header field `version` reads {} in big-endian byte order: a big-endian GGUF \
             file; moa reads little-endian GGUF (versions 1..=3) only",
            version.swap_bytes()
        ));
    }
    if !(1..=3).contains(&version) {
        return Err(format!(
            "header field `version` = {version} is out of range: allowed 1..=3"
        ));
    }
    c.wide = version >= 2;
    let tensor_count = c.len(&|| "header field `tensor_count`".to_string())?;
    let kv_count = c.len(&|| "header field `metadata_kv_count`".to_string())?;
    let len = if c.wide { 8 } else { 4 };
    let (min_kv, min_tensor) = (len + 4 + 1, len + 4 + 4 + 8);
    for (name, n, min) in [
        ("metadata_kv_count", kv_count, min_kv),
        ("tensor_count", tensor_count, min_tensor),
    ] {
        if n.saturating_mul(min) > c.left() {
            return Err(format!(
                "header field `{name}` = {n} is out of range: the {} bytes left in the file hold at most {}",
                c.left(),
                c.left() / min
            ));
        }
    }
    let mut keys = HashSet::new();
    // The entry before, to place a key or name that cannot be read.
    let mut before = "header field `metadata_kv_count`".to_string();
    for i in 0..kv_count {
        let raw = c.string(
            &|| format!("the key of metadata entry #{i} (after {before})"),
            MAX_KEY_BYTES,
        )?;
        let key = String::from_utf8_lossy(&raw).into_owned();
        before = format!("metadata `{key}`");
        let field = || format!("metadata `{key}` (entry #{i})");
        let ty = c.u32(&|| format!("the value type of {}", field()))?;
        let int = c.value(ty, &field, 0)?;
        if key == "general.alignment" {
            // candle rounds the data offset up to this: 0 would divide by zero.
            match int {
                Some(a) if a > 0 && a <= 1 << 30 && (a & (a - 1)) == 0 => {}
                Some(a) => {
                    return Err(format!(
                        "metadata `general.alignment` = {a} is out of range: allowed a power of two in 1..=2^30"
                    ))
                }
                None => {
                    return Err(
                        "metadata `general.alignment` must be an integer (a power of two)".into(),
                    )
                }
            }
        }
        if !keys.insert(key.clone()) {
            return Err(format!("metadata `{key}` appears twice (entry #{i})"));
        }
    }
    let mut names = HashSet::new();
    for i in 0..tensor_count {
        let raw = c.string(
            &|| format!("the name of tensor #{i} (after {before})"),
            MAX_KEY_BYTES,
        )?;
        let name = String::from_utf8_lossy(&raw).into_owned();
        before = format!("tensor `{name}`");
        let field = |what: &str| format!("{what} of tensor `{name}` (#{i})");
        let n_dims = c.u32(&|| field("the dimension count"))?;
        if n_dims > MAX_DIMS {
            return Err(format!(
                "{} = {n_dims} is out of range: allowed 0..={MAX_DIMS}",
                field("the dimension count")
            ));
        }
        let mut elems: u64 = 1;
        let mut row = 1;
        for d in 0..n_dims {
            let dim = c.len(&|| field(&format!("dimension {d}")))?;
            if d == 0 {
                row = dim;
            }
            elems = elems.checked_mul(dim).ok_or_else(|| {
                format!(
                    "{} overflow 64 bits: the tensor cannot exist",
                    field("the dimensions")
                )
            })?;
        }
        if usize::try_from(elems).is_err() {
            return Err(format!(
                "{} give {elems} elements, more than this machine can address",
                field("the dimensions")
            ));
        }
        let type_at = c.pos;
        let ty = c.u32(&|| field("the ggml type"))?;
        let Some((_, type_name)) = GGML_TYPES.iter().find(|(id, _)| *id == ty) else {
            // Listed, not refused here: the rest of the file can still be shown.
            c.u64(&|| field("the data offset"))?;
            if !names.insert(name.clone()) {
                return Err(format!("tensor `{name}` appears twice (#{i})"));
            }
            header.unreadable.push(UnreadableTensor {
                name,
                index: i,
                type_id: ty,
            });
            header.type_offsets.push(type_at);
            continue;
        };
        // A quantized row is whole blocks; candle found a broken one only when the tensor
        // was read, after every tensor before it.
        let block = block_of(ty);
        if row % block != 0 {
            return Err(format!(
                "tensor `{name}` (#{i}) is {type_name} with rows of {row} values: {type_name} \
                 stores rows in blocks of {block}, so the row length must be a multiple of {block}"
            ));
        }
        c.u64(&|| field("the data offset"))?;
        if !names.insert(name.clone()) {
            return Err(format!("tensor `{name}` appears twice (#{i})"));
        }
    }
    Ok(header)
}
