//! The library's one entry from a plan to kernels: [`compile`] lowers a [`Plan`] and
//! generates every kernel for the asked targets; [`Compiled`] holds the result (the
//! lowered module, the sources per target, each kernel's typed launch interface) and
//! writes or reads a `moa-compile` output folder. `moa-compile`, the runtimes, the
//! snapshot tests and apps' `build.rs` all go through here, so a plan compiles to the same
//! bytes everywhere.

#![warn(missing_docs)]

use std::path::Path;

use super::cuda::{DecodeTuning, PrefillTuning};
use super::wgsl::WgslTuning;
use super::{emit, limits, Artifact, CodegenError, KernelInfo, Target};
use crate::lower::{lower, KernelModule, StorageType};
use crate::plan::Plan;

/// Choices of a compile beyond the plan, targets and storage type.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CompileOptions {
    /// Shape of the CUDA decode kernel (warps per block, pipeline depth); the default is
    /// what `moa-compile` generates, benchmarks compare others.
    pub cuda_decode: DecodeTuning,
    /// Shape of the CUDA prefill kernel (warpgroups, key tile, blocks per SM); likewise.
    pub cuda_prefill: PrefillTuning,
    /// Speed choices of the WGSL kernels ([`WgslTuning`]); the default is what
    /// `moa-compile` writes without its `--wgsl-*` flags (forms every adapter runs well,
    /// a CPU one included).
    pub wgsl: WgslTuning,
}

/// The kernels of one plan: the lowered module they were generated from and, per target,
/// the generated source files with the kernels each defines.
#[derive(Clone, Debug)]
pub struct Compiled {
    module: KernelModule,
    targets: Vec<(Target, Vec<Artifact>)>,
}

/// What a compile is doing when it reports progress ([`compile_with_progress`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompileStage {
    /// Generating the target's source files: rendering each template and, for WGSL,
    /// validating the module with naga (most of a compile's time: ≈ 0.2 s per layer for 64
    /// query heads of head_dim 128, against a few ms for CUDA).
    Generate,
    /// Checking each file's kernels against the target's resource limits
    /// ([`limits::check`]; the workgroup memory of WGSL files was sized when naga validated
    /// them, [`Artifact::workgroup_bytes`]).
    Limits,
}

/// One progress report of [`compile_with_progress`]: `files_done` of the `files` source
/// files of `target` have passed `stage`. A target's reports come in order, `files_done`
/// rising to `files` (the last report of each stage), generation before the limits check;
/// targets in the order asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompileProgress {
    /// The target whose files are being generated or checked.
    pub target: Target,
    /// The stage the files have passed.
    pub stage: CompileStage,
    /// Source files of `target` done with `stage` so far, 0..=`files`.
    pub files_done: usize,
    /// Source files `target` generates in all (WGSL: a prefill and a decode file per layer,
    /// a cooperative decode file per layer where generated, and one merge file; CUDA: one
    /// per layer).
    pub files: usize,
}

/// Lowers `plan` with Q/K/V and the cache stored as `storage`, and generates every kernel
/// for each of `targets` (in the order given, duplicates ignored). WGSL is validated with
/// naga and every kernel is checked against its target's resource limits
/// ([`limits::check`]). Errors: [`CodegenError::Unsupported`] (e.g. bf16 for WGSL, no
/// targets), [`CodegenError::Resources`] naming the layer and kernel over a limit, or a
/// template failure (a compiler bug).
pub fn compile(
    plan: &Plan,
    targets: &[Target],
    storage: StorageType,
) -> Result<Compiled, CodegenError> {
    compile_with_progress(plan, targets, storage, &mut |_| {})
}

/// [`compile`], calling `progress` as the files are generated and checked (see
/// [`CompileProgress`]; `moa-compile` draws a status line from it on a terminal). The
/// result is the same as [`compile`]'s: reporting changes no output.
pub fn compile_with_progress(
    plan: &Plan,
    targets: &[Target],
    storage: StorageType,
    progress: &mut dyn FnMut(&CompileProgress),
) -> Result<Compiled, CodegenError> {
    compile_tuned_with_progress(plan, targets, storage, WgslTuning::default(), progress)
}

/// [`compile_with_progress`] with the WGSL kernels' speed choices `wgsl` instead of the
/// default (`moa-compile --wgsl-prefill-q-tile 128 --wgsl-prefill-key-pairs` writes the
/// scalar prefill the wgpu engine runs on a GPU). The CUDA kernels are the default's.
/// Errors as [`compile`], and [`CodegenError::Unsupported`] for a choice outside its
/// range (e.g. [`WgslTuning::prefill_q_tile`] past 1..=256).
pub fn compile_tuned_with_progress(
    plan: &Plan,
    targets: &[Target],
    storage: StorageType,
    wgsl: WgslTuning,
    progress: &mut dyn FnMut(&CompileProgress),
) -> Result<Compiled, CodegenError> {
    let module = lower(plan, storage);
    // The CUDA prefill's default for this head_dim (`PrefillTuning::default_for`) and the
    // decode's for this GQA group (`DecodeTuning::default_for`), as the CUDA executor
    // generates them.
    let options = CompileOptions {
        cuda_decode: DecodeTuning::default_for(module.shape.group_size()),
        cuda_prefill: PrefillTuning::default_for(storage, module.shape.head_dim),
        wgsl,
    };
    Compiled::from_module_with_progress(module, targets, options, progress)
}

impl Compiled {
    /// [`compile`] for the WGSL target alone with the WGSL kernels' speed choices `tuning`
    /// instead of the default (tests run the wgpu engine over kernels other than the
    /// default, e.g. the decode with its separate merge dispatch).
    pub fn wgsl_with(
        plan: &Plan,
        storage: StorageType,
        tuning: super::wgsl::WgslTuning,
    ) -> Result<Compiled, CodegenError> {
        let module = lower(plan, storage);
        let artifacts = super::wgsl::generate_with(&module, tuning)?;
        limits::check(Target::Wgsl, &artifacts)?;
        Ok(Compiled {
            module,
            targets: vec![(Target::Wgsl, artifacts)],
        })
    }

    /// [`compile`] from an already lowered module, with `options` (the runtimes keep the
    /// module they launch with; benchmarks vary the CUDA decode shape).
    pub fn from_module(
        module: KernelModule,
        targets: &[Target],
        options: CompileOptions,
    ) -> Result<Compiled, CodegenError> {
        Self::from_module_with_progress(module, targets, options, &mut |_| {})
    }

    /// [`Compiled::from_module`], reporting progress as [`compile_with_progress`] does.
    pub fn from_module_with_progress(
        module: KernelModule,
        targets: &[Target],
        options: CompileOptions,
        progress: &mut dyn FnMut(&CompileProgress),
    ) -> Result<Compiled, CodegenError> {
        if targets.is_empty() {
            return Err(CodegenError::Unsupported {
                target: "any",
                message: "no target asked for: give wgsl, cuda or both".into(),
            });
        }
        check_row_addressable(&module, targets[0])?;
        let mut out: Vec<(Target, Vec<Artifact>)> = Vec::new();
        for &t in targets {
            if out.iter().any(|(have, _)| *have == t) {
                continue;
            }
            let mut generated = |files_done, files| {
                progress(&CompileProgress {
                    target: t,
                    stage: CompileStage::Generate,
                    files_done,
                    files,
                })
            };
            let artifacts = match t {
                Target::Wgsl => {
                    super::wgsl::generate_with_progress(&module, options.wgsl, &mut generated)?
                }
                Target::Cuda => super::cuda::generate_variant_progress(
                    &module,
                    options.cuda_decode,
                    options.cuda_prefill,
                    &mut generated,
                )?,
            };
            // File by file, as `limits::check` goes (the first failure is the same).
            for (i, a) in artifacts.iter().enumerate() {
                limits::check(t, std::slice::from_ref(a))?;
                progress(&CompileProgress {
                    target: t,
                    stage: CompileStage::Limits,
                    files_done: i + 1,
                    files: artifacts.len(),
                });
            }
            out.push((t, artifacts));
        }
        Ok(Compiled {
            module,
            targets: out,
        })
    }

    /// Reads the `target` kernels of `plan` (stored as `storage`) back from a `moa-compile`
    /// output folder instead of generating them. Errors ([`CodegenError::Manifest`]) when
    /// the folder was compiled for another plan, storage type or manifest version, or holds
    /// no kernels of `target`.
    pub fn read(
        dir: &Path,
        plan: &Plan,
        storage: StorageType,
        target: Target,
    ) -> Result<Compiled, CodegenError> {
        let module = lower(plan, storage);
        let artifacts = emit::read_output(dir, &module, target)?;
        Ok(Compiled {
            module,
            targets: vec![(target, artifacts)],
        })
    }

    /// The `target` kernels of `plan` from what an app embedded at build time: the
    /// `manifest` text and each source by its relative path (`kernels.rs`'s `MANIFEST` and
    /// `KERNELS[i].path`, `.source`). Nothing is generated: the storage type is the
    /// manifest's, and the manifest must have been written for exactly `plan`
    /// ([`CodegenError::Manifest`] names the first differing field otherwise).
    pub fn from_embedded(
        plan: &Plan,
        target: Target,
        manifest: &str,
        sources: &[(&str, &str)],
    ) -> Result<Compiled, CodegenError> {
        let origin = "embedded manifest";
        let storage = manifest_storage(origin, manifest)?;
        let module = lower(plan, storage);
        let mut source_of = |rel: &str| {
            let found = sources
                .iter()
                .find(|(p, _)| *p == rel)
                .map(|(_, s)| s.as_bytes().to_vec())
                .ok_or_else(|| "it is not among the embedded sources".to_string());
            (rel.to_string(), found)
        };
        let rerun = "rebuild the app from kernels written together with their manifest: by its \
                     build.rs (`Compiled::write`), or by `moa-compile PLAN -o DIR` into the \
                     folder it embeds";
        let artifacts =
            emit::parse_output(origin, manifest, rerun, &module, target, &mut source_of)?;
        Ok(Compiled {
            module,
            targets: vec![(target, artifacts)],
        })
    }

    /// Checks that these kernels were compiled for exactly `plan` (shape, span constants,
    /// per-layer rules): kernels bake all of them in, so others would run the wrong masks.
    /// [`CodegenError::Manifest`] names the first differing field.
    pub fn check_plan(&self, plan: &Plan) -> Result<(), CodegenError> {
        let want = lower(plan, self.module.storage);
        let json = |m: &KernelModule| serde_json::to_value(m).unwrap_or_default();
        match emit::first_difference("kernels", &json(&self.module), &json(&want)) {
            None => Ok(()),
            Some(diff) => Err(CodegenError::Manifest {
                path: "compiled kernels".into(),
                message: format!("were compiled for another plan: {diff}"),
            }),
        }
    }

    /// The lowered plan the kernels bake in: shape, span constants, storage type, and per
    /// layer the rule groups and KV segments (cache layouts follow from it and N).
    pub fn module(&self) -> &KernelModule {
        &self.module
    }

    /// Element type of Q, K, V and the cache in device memory.
    pub fn storage(&self) -> StorageType {
        self.module.storage
    }

    /// The targets compiled, in the order asked.
    pub fn targets(&self) -> Vec<Target> {
        self.targets.iter().map(|(t, _)| *t).collect()
    }

    /// The source files of `target` (empty when it was not compiled).
    pub fn artifacts(&self, target: Target) -> &[Artifact] {
        self.targets
            .iter()
            .find(|(t, _)| *t == target)
            .map_or(&[], |(_, a)| a.as_slice())
    }

    /// Every source file with its target, in target order.
    pub fn all_artifacts(&self) -> &[(Target, Vec<Artifact>)] {
        &self.targets
    }

    /// The manifest entries: every kernel of every target with its typed launch interface
    /// ([`super::abi::KernelAbi`]: parameters, block, tiles, grid rule).
    pub fn kernels(&self) -> impl Iterator<Item = &KernelInfo> {
        self.targets
            .iter()
            .flat_map(|(_, a)| a.iter())
            .flat_map(|a| a.kernels.iter())
    }

    /// `manifest.json` exactly as `moa-compile` writes it (deterministic).
    pub fn manifest_json(&self) -> String {
        emit::manifest_json(&self.module, &self.targets)
    }

    /// `kernels.rs` exactly as `moa-compile` writes it: every source embedded with
    /// `include_str!` (paths relative to the output folder) plus the manifest.
    pub fn embed_rs(&self) -> String {
        emit::embed_rs(&self.targets)
    }

    /// Writes the output folder `moa-compile` writes (sources, `manifest.json`,
    /// `kernels.rs`); unchanged files are left alone and kernel files of an earlier plan
    /// removed ([`emit::write_output`]). Returns how many files changed.
    pub fn write(&self, dir: &Path) -> Result<usize, CodegenError> {
        emit::write_output(dir, &self.module, &self.targets)
    }

    /// The source files of `target`, by value (empty when it was not compiled).
    pub fn into_artifacts(self, target: Target) -> Vec<Artifact> {
        self.targets
            .into_iter()
            .find(|(t, _)| *t == target)
            .map_or_else(Vec::new, |(_, a)| a)
    }

    /// The lowered module and the sources per target, by value.
    pub fn into_parts(self) -> (KernelModule, Vec<(Target, Vec<Artifact>)>) {
        (self.module, self.targets)
    }
}

/// The `storage` field of a manifest (`f32`, `f16` or `bf16`).
fn manifest_storage(origin: &str, manifest: &str) -> Result<StorageType, CodegenError> {
    let bad = |message: String| CodegenError::Manifest {
        path: origin.to_string(),
        message,
    };
    let m: serde_json::Value =
        serde_json::from_str(manifest).map_err(|e| bad(format!("not JSON: {e}")))?;
    [StorageType::F32, StorageType::F16, StorageType::Bf16]
        .into_iter()
        .find(|t| m["storage"].as_str() == Some(t.name()))
        .ok_or_else(|| {
            bad(format!(
                "`storage` is {}: allowed \"f32\", \"f16\" or \"bf16\"",
                m["storage"]
            ))
        })
}

/// The kernels address one row of a layer's K or V cache (its KV heads' segments back to
/// back, DESIGN §4) by `u32` element indices, and the manifest records the layout at
/// N = `model.max_context_tokens` in `u32` slots: a row of more than `u32::MAX` elements
/// there is refused, naming the field. (Round 26: a legal 2^30-token context over 4 KV
/// heads wrapped the manifest's segment offsets to 0 in silence.) Spans only grow with N,
/// so no request of the plan needs more.
fn check_row_addressable(module: &KernelModule, target: Target) -> Result<(), CodegenError> {
    let n = module.shape.max_context_tokens;
    for layer in &module.layers {
        let slots = crate::lower::CacheLayout::row_slots_wide(layer, &module.span, n);
        let elements = slots * u64::from(module.shape.head_dim);
        if elements > u64::from(u32::MAX) {
            return Err(CodegenError::Unsupported {
                target: target.name(),
                message: format!(
                    "at model.max_context_tokens = {n}, layer {}'s cache row holds {slots} slots (the largest span of each of its {} KV heads) × head_dim {} = {elements} elements, past the {} that the kernels address in u32: give the plan a shorter model.max_context_tokens (a request never needs more than its prompt + span.max_new_tokens)",
                    layer.layer,
                    module.shape.kv_heads,
                    module.shape.head_dim,
                    u32::MAX
                ),
            });
        }
    }
    Ok(())
}
