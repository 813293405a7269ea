//! "Kernels that run anywhere wgpu runs", checked where CI can check it: every WGSL kernel
//! the wgpu engine and `moa-compile` write is translated by naga's SPIR-V, Metal (MSL) and
//! DX12 (HLSL) writers, as wgpu's Vulkan, Metal and DX12 back ends do before handing it to
//! the driver. lavapipe runs only the SPIR-V of the paths a CPU adapter takes; a kernel
//! naga could not write for Metal or DX12 would otherwise first fail on a user's Mac or
//! Windows laptop, as a pipeline error at load.
//!
//! Each module is validated with the capabilities naga's writer for that back end supports
//! (`naga::back::*::supported_capabilities`, the bound of what wgpu can offer there), its
//! overrides resolved to their defaults (`process_overrides`, as the back ends do per
//! pipeline), and written for every compute entry point. Versions: SPIR-V 1.3; MSL 2.1
//! (the oldest with the SIMD-group functions the subgroup kernels use; wgpu asks the
//! device's newest, so a kernel written at 2.1 is written at any); HLSL shader model 6.2
//! (the first with 16-bit types, which wgpu's DX12 back end needs for SHADER_F16).
//!
//! Not checked here: the drivers' own compilers (Metal's, DXC), which only a Mac or a
//! Windows machine runs. The matrix-unit kernels (`enable wgpu_cooperative_matrix;`, 16 ×
//! 16 × 16 f16 configurations) go to SPIR-V only: wgpu 30 offers those configurations only
//! through Vulkan (its Metal back end offers 8 × 8 simdgroup matrices, its DX12 back end
//! none), so the engine never builds them elsewhere and falls back to the kernels above.

use moa::codegen::wgsl::WgslTuning;
use moa::lower::StorageType;
use moa::runtime::shaders::{Types, ALL};
use moa::runtime::wgpu_engine::options::{engine_fused_merge, engine_wgsl_tuning};
use naga::back::{hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};
use naga::ShaderStage;

/// A back end's writer for one resolved module and entry point.
#[derive(Clone, Copy, Debug)]
enum Backend {
    Spirv,
    Metal,
    Dx12,
}

impl Backend {
    fn capabilities(self) -> Capabilities {
        match self {
            Backend::Spirv => spv::supported_capabilities(),
            Backend::Metal => msl::supported_capabilities(),
            Backend::Dx12 => hlsl::supported_capabilities(),
        }
    }

    fn write(
        self,
        module: &naga::Module,
        info: &naga::valid::ModuleInfo,
        entry: &str,
    ) -> Result<(), String> {
        let ep = Some((ShaderStage::Compute, entry.to_string()));
        match self {
            Backend::Spirv => {
                let options = spv::Options {
                    lang_version: (1, 3),
                    ..Default::default()
                };
                let pipeline = spv::PipelineOptions {
                    shader_stage: ShaderStage::Compute,
                    entry_point: entry.to_string(),
                };
                spv::write_vec(module, info, &options, Some(&pipeline))
                    .map(drop)
                    .map_err(|e| format!("{e:?}"))
            }
            Backend::Metal => {
                let options = msl::Options {
                    lang_version: (2, 1),
                    ..Default::default()
                };
                let pipeline = msl::PipelineOptions {
                    entry_point: ep,
                    ..Default::default()
                };
                msl::write_string(module, info, &options, &pipeline)
                    .map(drop)
                    .map_err(|e| format!("{e:?}"))
            }
            Backend::Dx12 => {
                let options = hlsl::Options {
                    shader_model: hlsl::ShaderModel::V6_2,
                    ..Default::default()
                };
                let pipeline = hlsl::PipelineOptions { entry_point: ep };
                let mut out = String::new();
                hlsl::Writer::new(&mut out, &options, &pipeline)
                    .write(module, info, None)
                    .map(drop)
                    .map_err(|e| format!("{e:?}"))
            }
        }
    }
}

/// Every failure of `source` (named `what`) on `backends`: parse, validation with the
/// back end's capabilities, override resolution or the writer, one line each.
fn translate(what: &str, source: &str, backends: &[Backend]) -> Vec<String> {
    let module = match naga::front::wgsl::parse_str(source) {
        Ok(m) => m,
        Err(e) => return vec![format!("{what}: {}", e.emit_to_string(source))],
    };
    let mut failures = Vec::new();
    for &backend in backends {
        let info = match Validator::new(ValidationFlags::all(), backend.capabilities())
            .validate(&module)
        {
            Ok(info) => info,
            Err(e) => {
                failures.push(format!(
                    "{what} [{backend:?}]: {}",
                    e.emit_to_string(source)
                ));
                continue;
            }
        };
        let entries = module
            .entry_points
            .iter()
            .filter(|ep| ep.stage == ShaderStage::Compute);
        for ep in entries {
            let resolved = naga::back::pipeline_constants::process_overrides(
                &module,
                &info,
                Some((ShaderStage::Compute, &ep.name)),
                &Default::default(),
            );
            let result = resolved
                .map_err(|e| format!("overrides: {e:?}"))
                .and_then(|(m, i)| backend.write(&m, &i, &ep.name));
            if let Err(e) = result {
                failures.push(format!("{what} [{backend:?}] {}: {e}", ep.name));
            }
        }
    }
    failures
}

const ALL_BACKENDS: [Backend; 3] = [Backend::Spirv, Backend::Metal, Backend::Dx12];

fn assert_none(failures: &[String], checked: usize) {
    assert!(checked > 0);
    assert!(
        failures.is_empty(),
        "{} of {checked} translations failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The hand-written kernels (`shaders/`, [`ALL`]) for every combination of weight, input
/// and attention type (f16 and f32 each) on Vulkan, Metal and DX12.
#[test]
fn every_hand_written_kernel_translates_for_vulkan_metal_and_dx12() {
    let types = [StorageType::F32, StorageType::F16];
    let (mut failures, mut checked) = (Vec::new(), 0);
    for shader in ALL {
        for weights in types {
            for input in types {
                for attention in types {
                    let t = Types {
                        weights,
                        input,
                        attention,
                    };
                    let what = format!("{} ({weights:?}, {input:?}, {attention:?})", shader.name);
                    failures.extend(translate(&what, &shader.source(t), &ALL_BACKENDS));
                    checked += 1;
                }
            }
        }
    }
    assert_none(&failures, checked);
}

/// The generated attention kernels of an MHA, a GQA and the default SmolLM2 plan, f16 and
/// f32, as `moa-compile` writes them (the scalar decode, rules baked) and as the engine
/// compiles them on GPUs with subgroups of 8, 32 and 64 (its tuning: the flat decode on
/// subgroups where a layer fits it, the rules table, two keys a step and 128 queries a
/// workgroup in the scalar prefill, the fused merge as the engine derives it). Matrix-unit
/// kernels go to SPIR-V only (module docs).
#[test]
fn every_generated_attention_kernel_translates_for_vulkan_metal_and_dx12() {
    let (mut failures, mut checked, mut coop) = (Vec::new(), 0, 0);
    for path in [
        "plans/fixture-mha.toml",
        "plans/fixture-gqa.toml",
        "plans/smollm2-135m-moa-50.toml",
    ] {
        let plan = moa::Plan::load(std::path::Path::new(path)).unwrap();
        let shape = plan.model();
        for storage in [StorageType::F16, StorageType::F32] {
            let module = moa::lower::lower(&plan, storage);
            let mut tunings = vec![("moa-compile".to_string(), WgslTuning::default())];
            for sg in [8u8, 32, 64] {
                let mut t = engine_wgsl_tuning();
                t.decode_subgroup = Some(sg);
                t.prefill_key_pairs = Some(true);
                t.prefill_q_tile = Some(128);
                t.decode_fused_merge =
                    Some(engine_fused_merge(&t, shape.group_size(), shape.head_dim));
                tunings.push((format!("engine, subgroups of {sg}"), t));
            }
            for (tuning, t) in tunings {
                let artifacts = moa::codegen::wgsl::generate_with(&module, t)
                    .unwrap_or_else(|e| panic!("{path} {storage:?} {tuning}: {e}"));
                for a in artifacts.iter().filter(|a| a.path.ends_with(".wgsl")) {
                    let what = format!("{path} {storage:?} {tuning}: {}", a.path);
                    let backends: &[Backend] = if a.source.contains("wgpu_cooperative_matrix") {
                        // The harness does see a writer's refusal: naga's MSL writer
                        // refuses these below MSL 2.3 (and wgpu would not build them there).
                        if coop == 0 {
                            let metal = translate(&what, &a.source, &[Backend::Metal]);
                            assert!(
                                metal
                                    .iter()
                                    .any(|f| f.contains("UnsupportedCooperativeMatrix")),
                                "{metal:?}"
                            );
                        }
                        coop += 1;
                        &[Backend::Spirv]
                    } else {
                        &ALL_BACKENDS
                    };
                    failures.extend(translate(&what, &a.source, backends));
                    checked += 1;
                }
            }
        }
    }
    assert!(coop > 0, "no matrix-unit kernel generated");
    assert_none(&failures, checked);
}
