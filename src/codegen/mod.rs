//! Code generation: a [`KernelModule`] becomes WGSL and CUDA C++ sources, one fused
//! prefill and one fused decode kernel per layer (plus a split-merge kernel), with the
//! layer's rules, sink and head map baked in as constants. N and the per-row lengths
//! are the only run-time values. Templates live in `templates/` and are embedded.

#![warn(missing_docs)]

pub mod abi;
pub mod compiled;
pub mod ctx;
pub mod cuda;
pub mod emit;
pub mod limits;
pub mod wgsl;

use serde::{Deserialize, Serialize};

use crate::lower::KernelModule;

pub use compiled::{
    compile, compile_tuned_with_progress, compile_with_progress, CompileOptions, CompileProgress,
    CompileStage, Compiled,
};

/// Every failure of compiling a plan's kernels, writing them, and reading a compile's
/// output (a manifest, a kernel file, embedded sources) back.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    /// A kernel template failed to render (a compiler bug).
    #[error("template `{template}` failed to render for layer {layer:?}")]
    Render {
        /// The template's name, e.g. `prefill.wgsl.j2` (`<syntax>` for the environment's
        /// syntax settings).
        template: String,
        /// The layer being rendered; `None` for a kernel shared by all layers and for
        /// loading the templates.
        layer: Option<u32>,
        /// minijinja's error, with the template line.
        #[source]
        source: minijinja::Error,
    },
    /// A generated kernel that does not validate is a compiler bug.
    #[error("compiler bug: generated WGSL from template `{template}` (layer {layer:?}) is invalid:\n{message}")]
    InvalidWgsl {
        /// The template the module was rendered from.
        template: String,
        /// The layer rendered; `None` for a kernel shared by all layers.
        layer: Option<u32>,
        /// naga's parse or validation error, with the source span.
        message: String,
    },
    /// A plan or storage type the target cannot generate (e.g. bf16 for WGSL).
    #[error("the {target} target cannot generate this module: {message}")]
    Unsupported {
        /// [`Target::name`] of the target: `wgsl` or `cuda`.
        target: &'static str,
        /// What the target cannot do and the allowed range (head_dim, GQA group, storage).
        message: String,
    },
    /// A manifest.json (or embedded manifest) that does not parse or is not this plan's:
    /// the message names the first field that differs.
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest's path, or the name an embedded manifest is shown under.
        path: String,
        /// What is wrong, and how to write the folder again.
        message: String,
    },
    /// A kernel file of a compile output folder (or an embedded source) is missing or not
    /// what the manifest records (`bytes`, `sha256`): edited, truncated or replaced after
    /// moa-compile wrote it. Checked before anything compiles or loads it.
    #[error("kernel file `{path}` does not match {manifest} (written by moa-compile {written_by}): {message}")]
    KernelFile {
        /// The kernel file's path as shown to the user.
        path: String,
        /// The manifest that lists the file (its path, or the embedded manifest's name).
        manifest: String,
        /// The manifest's `moa_version`, or `of unknown version` where it has none.
        written_by: String,
        /// The expected and found length (bytes) and sha256, and how to compile again.
        message: String,
    },
    /// A kernel exceeds a resource limit of its target (see [`limits`]).
    #[error("{}: {target} kernel `{kernel}` {message}", .layer.map_or("all layers".to_string(), |l| format!("layer {l}")))]
    Resources {
        /// [`Target::name`] of the kernel's target: `wgsl` or `cuda`.
        target: &'static str,
        /// The kernel's layer; `None` for a kernel shared by all layers (the merge).
        layer: Option<u32>,
        /// The kernel's name (its entry point).
        kernel: String,
        /// The limit exceeded, with the kernel's figure and the target's bound (threads,
        /// bytes of shared / workgroup memory).
        message: String,
    },
    /// A file of the output folder cannot be written; the OS error is the source.
    #[error("cannot write `{path}`")]
    Io {
        /// The file that could not be written or removed.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The output folder (or its `wgsl/`, `cuda/` subfolder) cannot be made: named as the
    /// folder, where "cannot write `OUT/wgsl/l00_prefill.wgsl`" blamed a file for a
    /// read-only parent or a name too long.
    #[error("cannot create the folder `{path}` (for `{file}`)")]
    CreateDir {
        /// The first folder on the way to `file` that could not be made (or that exists
        /// as a file).
        path: String,
        /// The file being written when the folder was needed.
        file: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A kernel language moa generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// WGSL, for wgpu (Vulkan, Metal, DX12, lavapipe).
    Wgsl,
    /// CUDA C++, compiled with NVRTC.
    Cuda,
}

impl Target {
    /// `wgsl` or `cuda`, as `moa-compile --target` and the output folders spell it.
    pub fn name(self) -> &'static str {
        match self {
            Target::Wgsl => "wgsl",
            Target::Cuda => "cuda",
        }
    }
}

/// Which attention pass a kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Attention over a whole prompt (one query per prompt token).
    Prefill,
    /// Attention of one new token per row over its cache.
    Decode,
    /// The WGSL split-K merge (the CUDA decode merges inside its one kernel).
    DecodeMerge,
}

/// Everything a host needs to launch one generated kernel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelInfo {
    /// The kernel's name: its entry point, e.g. `moa_prefill_f16_hd64_l03`.
    pub name: String,
    /// The language of the source that defines it.
    pub target: Target,
    /// The attention pass it runs.
    pub phase: Phase,
    /// `None` for kernels shared by all layers (the merge step).
    pub layer: Option<u32>,
    /// The function a host launches: the WGSL `@compute` entry point or the CUDA
    /// `extern "C" __global__` function.
    pub entry_point: String,
    /// Parameters / bindings in order, block size, tiles and grid rule: what an executor
    /// binds and launches from (`abi::KernelAbi`).
    pub abi: abi::KernelAbi,
    /// The plan constants baked into the source (sink, rules, head map), for readers.
    pub constants: serde_json::Value,
}

impl KernelInfo {
    /// A kernel named by its entry point (every generated kernel is).
    pub(crate) fn new(
        target: Target,
        phase: Phase,
        layer: Option<u32>,
        entry_point: String,
        abi: abi::KernelAbi,
        constants: serde_json::Value,
    ) -> Self {
        KernelInfo {
            name: entry_point.clone(),
            target,
            phase,
            layer,
            entry_point,
            abi,
            constants,
        }
    }
}

/// One generated source file and the kernels it defines. Equality compares the path,
/// the source and the kernels, not [`Artifact::workgroup_bytes`] (a figure derived from the
/// source, present only where the generator sized it).
#[derive(Clone, Debug, Serialize)]
pub struct Artifact {
    /// Path relative to the output folder, e.g. `wgsl/l03_prefill.wgsl`.
    pub path: String,
    /// The file's text (WGSL or CUDA C++); not written into the manifest.
    #[serde(skip)]
    pub source: String,
    /// WGSL: bytes of workgroup memory the module declares, sized by naga when the
    /// generator validated it (so [`limits::check`] does not parse the file a second time:
    /// half of a 1024-layer compile, session 27). `None` for CUDA, and for a file read back
    /// from a manifest, whose WGSL the check parses.
    #[serde(skip)]
    pub workgroup_bytes: Option<u64>,
    /// The kernels the file defines, in the order the generator emitted them.
    pub kernels: Vec<KernelInfo>,
}

impl PartialEq for Artifact {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.source == other.source && self.kernels == other.kernels
    }
}

/// Generates every kernel of `module` for `target` (one stage of [`compile`], which is the
/// entry to use: it lowers the plan and covers several targets). WGSL output is validated with
/// naga, and every kernel is checked against its target's resource limits
/// ([`limits::check`]: threads and shared / workgroup memory per block) before it is
/// returned; `CodegenError::Resources` names the layer and kernel that do not fit.
pub fn generate(module: &KernelModule, target: Target) -> Result<Vec<Artifact>, CodegenError> {
    let artifacts = match target {
        Target::Wgsl => wgsl::generate(module)?,
        Target::Cuda => cuda::generate(module)?,
    };
    limits::check(target, &artifacts)?;
    Ok(artifacts)
}

/// A minijinja environment over embedded templates: strict undefined, so a missing
/// context field is an error, not an empty string in a kernel.
pub fn environment(
    templates: &[(&'static str, &'static str)],
) -> Result<minijinja::Environment<'static>, CodegenError> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .map_err(|source| CodegenError::Render {
            template: "<syntax>".into(),
            layer: None,
            source,
        })?;
    env.set_syntax(syntax);
    for (name, src) in templates {
        env.add_template(name, src)
            .map_err(|source| CodegenError::Render {
                template: (*name).to_string(),
                layer: None,
                source,
            })?;
    }
    Ok(env)
}

/// Renders one template, naming it and the layer on failure.
pub fn render<S: Serialize>(
    env: &minijinja::Environment<'_>,
    template: &str,
    layer: Option<u32>,
    ctx: &S,
) -> Result<String, CodegenError> {
    let err = |source| CodegenError::Render {
        template: template.to_string(),
        layer,
        source,
    };
    env.get_template(template)
        .map_err(err)?
        .render(minijinja::value::Serde(ctx))
        .map_err(err)
}
