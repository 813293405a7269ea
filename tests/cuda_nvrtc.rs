//! Every generated CUDA kernel compiles with NVRTC for sm_90 (and assembles with ptxas
//! when `MOA_PTXAS` names one). No GPU needed; NVRTC and the CUDA headers come from
//! `scripts/cuda-deps.sh` (`eval "$(scripts/cuda-deps.sh)"` before `cargo test`).
//! Running the kernels is `examples/cuda_check.rs`, on a GPU machine.

#[path = "common/sweeps.rs"]
mod sweeps;

use std::path::{Path, PathBuf};
use std::process::Command;

use moa::codegen::abi::Arg;
use moa::codegen::{cuda, Artifact, Phase};
use moa::lower::{lower, KernelModule, StorageType};
use moa::plan::{upstream, ModelShape, Plan};
use moa::runtime::cuda::{compile_artifact, cubin_key, CudaError, DEFAULT_ARCH};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> Plan {
    let path = repo().join("plans").join(name);
    Plan::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn llama3_8b() -> Plan {
    let path = repo().join(
        "tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json",
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let shape = ModelShape {
        name: Some("gradientai/Llama-3-8B-Instruct-262k".into()),
        layers: 32,
        q_heads: 32,
        kv_heads: 8,
        head_dim: 128,
        max_context_tokens: 262_144,
    };
    upstream::import(&text, &path.display().to_string(), shape).unwrap_or_else(|e| panic!("{e}"))
}

/// Compiles one artifact for [`DEFAULT_ARCH`]; a missing NVRTC fails the test with the
/// install instructions.
fn compile(a: &Artifact) -> String {
    compile_for(a, DEFAULT_ARCH)
}

/// Each distinct (architecture, source) is compiled once per test run: NVRTC is a pure
/// function of the source, the architecture and the options, and the tests share sources
/// (the variant tests regenerate the default decode and prefill bodies; in session 28,
/// 51 of the 313 compiles repeated an earlier one). A test that needs a source another
/// test is compiling waits for that compile instead of repeating it.
fn compile_for(a: &Artifact, arch: &'static str) -> String {
    once_per_key(&COMPILED, cubin_key(&a.source, arch), || {
        compile_uncached(a, arch)
    })
}

/// The compiled PTX by [`cubin_key`] of source and architecture ([`compile_for`]).
static COMPILED: Memo = Memo::new(Vec::new());

/// ptxas's logs by [`cubin_key`] of the PTX ([`assemble`]).
static ASSEMBLED: Memo = Memo::new(Vec::new());

/// Results by key, each computed once; the slot is taken out of the lock, so different
/// keys compute at once and the same key waits.
type Memo = std::sync::Mutex<Vec<(String, std::sync::Arc<std::sync::OnceLock<String>>)>>;

/// The value of `key` in `memo`, from `f` the first time. A panic in `f` fails the test
/// that ran it and leaves the slot empty, so a later test computes (and fails) again.
fn once_per_key(memo: &Memo, key: String, f: impl FnOnce() -> String) -> String {
    let slot = {
        let mut memo = memo.lock().unwrap_or_else(|e| e.into_inner());
        match memo.iter().find(|(k, _)| *k == key) {
            Some((_, slot)) => slot.clone(),
            None => {
                let slot = std::sync::Arc::default();
                memo.push((key, std::sync::Arc::clone(&slot)));
                slot
            }
        }
    };
    slot.get_or_init(f).clone()
}

fn compile_uncached(a: &Artifact, arch: &'static str) -> String {
    match compile_artifact(a, arch) {
        Ok(ptx) => ptx,
        Err(e @ (CudaError::NvrtcMissing { .. } | CudaError::HeadersMissing { .. })) => panic!(
            "{e}\n\nThis test needs NVRTC: run `eval \"$(scripts/cuda-deps.sh)\"` first (CI does)."
        ),
        Err(e) => panic!("{e}"),
    }
}

/// Assembles PTX with ptxas when `MOA_PTXAS` is set, and reports register spills.
/// Returns ptxas's log (empty without `MOA_PTXAS`). The same PTX is assembled once per test
/// run (its log names no file, so a repeat could only give the same log; spills of a
/// repeated PTX are reported the first time only).
fn assemble(name: &str, ptx: &str, dir: &Path) -> String {
    if std::env::var_os("MOA_PTXAS").is_none() {
        return String::new();
    }
    once_per_key(&ASSEMBLED, cubin_key(ptx, DEFAULT_ARCH), || {
        assemble_uncached(name, ptx, dir)
    })
}

fn assemble_uncached(name: &str, ptx: &str, dir: &Path) -> String {
    let Some(ptxas) = std::env::var_os("MOA_PTXAS") else {
        return String::new();
    };
    let src = dir.join(format!("{name}.ptx"));
    std::fs::write(&src, ptx).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let out = Command::new(&ptxas)
        .arg(format!("-arch={DEFAULT_ARCH}"))
        .arg("-v")
        .arg(&src)
        .arg("-o")
        .arg(dir.join(format!("{name}.cubin")))
        .output()
        .unwrap_or_else(|e| panic!("cannot run ptxas {ptxas:?}: {e}"));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ptxas rejected {name}:\n{log}");
    // Spills cost speed, not correctness: report them, so they show in CI logs.
    let mut entry = "";
    for line in log.lines() {
        if let Some(e) = line.split("Compiling entry function '").nth(1) {
            entry = e.split('\'').next().unwrap_or(e);
        }
        if line.contains("spill") && !line.contains(" 0 bytes spill stores, 0 bytes spill loads") {
            eprintln!("warning: {entry}: {}", line.trim());
        }
    }
    log.into_owned()
}

/// A folder for ptxas's inputs and outputs, removed when dropped, also when a test fails
/// (the tests used to leave their PTX and cubins in the temporary folder on every run).
/// Each call gets its own folder, so tests running at once never share one.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

fn scratch(tag: &str) -> Scratch {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("moa-cuda-nvrtc-{}-{n}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    Scratch(dir)
}

/// Compiles the artifacts of `module` whose layer passes `keep`, checks each declares
/// the kernels it defines, and returns how many files were compiled.
fn compile_module(tag: &str, module: &KernelModule, keep: impl Fn(u32) -> bool) -> usize {
    let arts = cuda::generate(module).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        arts.len(),
        module.layers.len(),
        "one file per layer (the decode merges its own chunks)"
    );
    let dir = scratch(tag);
    let mut n = 0;
    for a in &arts {
        let layer = a.kernels.first().and_then(|k| k.layer);
        if layer.is_some_and(|l| !keep(l)) {
            continue;
        }
        let ptx = compile(a);
        for k in &a.kernels {
            assert!(
                ptx.contains(&format!(".entry {}(", k.entry_point)),
                "{}: PTX lacks entry {}",
                a.path,
                k.entry_point
            );
            assert_eq!(k.target, moa::codegen::Target::Cuda);
        }
        assemble(&a.path.replace(['/', '.'], "_"), &ptx, &dir);
        n += 1;
    }
    n
}

#[test]
fn fixtures_compile_for_sm90() {
    for name in ["fixture-mha.toml", "fixture-gqa.toml"] {
        let plan = fixture(name);
        for storage in [StorageType::F32, StorageType::F16, StorageType::Bf16] {
            let module = lower(&plan, storage);
            let n = compile_module(&format!("{name}-{}", storage.name()), &module, |_| true);
            assert_eq!(n, module.layers.len());
        }
    }
}

/// What `moa-compile` writes compiles without NVRTC's warning #177 ("declared but never
/// referenced"): an app that builds the kernels with warnings as errors builds them.
/// Round 26: every f16/bf16 file warned 7-8 times (tile constants a form does not use),
/// now `[[maybe_unused]]`.
#[test]
fn written_kernels_compile_without_unused_warnings() {
    let include = moa::runtime::cuda::fp16_include_dir().unwrap_or_else(|e| panic!("{e}"));
    for name in ["fixture-mha.toml", "fixture-gqa.toml"] {
        let plan = fixture(name);
        for storage in [StorageType::F32, StorageType::F16, StorageType::Bf16] {
            let compiled = moa::codegen::compile(&plan, &[moa::codegen::Target::Cuda], storage)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let a = &compiled.artifacts(moa::codegen::Target::Cuda)[0];
            let opts = cudarc::nvrtc::CompileOptions {
                arch: Some(DEFAULT_ARCH),
                include_paths: vec![include.display().to_string()],
                options: vec!["--std=c++17".into(), "--diag-error=177".into()],
                ..Default::default()
            };
            if let Err(e) = cudarc::nvrtc::compile_ptx_with_opts(&a.source, opts) {
                panic!(
                    "{name} {}: {} with --diag-error=177: {e:?}",
                    storage.name(),
                    a.path
                );
            }
        }
    }
}

/// Round 20: a plan of 16 or 32 query heads over one KV head compiled with moa-compile
/// and failed NVRTC ("static assertion failed with \"the warps' states fit one stage\""):
/// the lean decode epilogue is kept only where the states fit (`decode_lean`). Session 35:
/// such groups run as sub-groups of at most 8 by default (`decode_sub_groups`: 16 and 32
/// heads as 2 and 4 of 8, 12 as 2 of 6), and whole in one block with `G`; both compile.
/// Session 36: the scalar f32 decode as sub-groups too.
#[test]
fn wide_gqa_groups_compile_for_sm90() {
    for (shape, (q_heads, kv_heads, head_dim)) in [
        (16, 1, 64),
        (32, 1, 64),
        (32, 1, 128),
        (24, 2, 128),
        (64, 1, 256),
    ]
    .into_iter()
    .enumerate()
    {
        let plan = Plan::dense(ModelShape {
            name: None,
            layers: 1,
            q_heads,
            kv_heads,
            head_dim,
            max_context_tokens: 4096,
        })
        .unwrap();
        // Session 36: the scalar (f32) decode as sub-groups too (64 / 1 at head_dim 256 was
        // refused in f32: 330 752 bytes of shared memory whole). The first shape in every
        // storage type, each other in one, taking turns (`common::sweeps`): 64 / 1 at 256 in
        // f32, 32 / 1 at 128 in bf16 (with its whole group, `G`).
        let storages = [StorageType::F16, StorageType::F32, StorageType::Bf16];
        for (s, storage) in storages.into_iter().enumerate() {
            if !sweeps::runs(shape, shape == 0, s, storages.len()) {
                continue;
            }
            let module = lower(&plan, storage);
            let tag = format!("gqa{q_heads}-{kv_heads}-{head_dim}-{}", storage.name());
            assert_eq!(compile_module(&tag, &module, |_| true), 1);
            let group = module.shape.group_size();
            let sub = cuda::decode_sub_groups(
                storage,
                head_dim,
                group,
                cuda::DecodeTuning::default_for(group),
            );
            assert_eq!(sub, group.div_ceil(8), "{tag}");
            if storage == StorageType::Bf16 && head_dim == 128 && kv_heads == 1
                || head_dim == 64 && q_heads == 16
            {
                // Session 34's whole group in one block (`G`).
                let whole = cuda::DecodeTuning {
                    whole_group: true,
                    ..cuda::DecodeTuning::default_for(group)
                };
                let arts = cuda::generate_tuned(&module, whole).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(arts[0].kernels[1].abi.tiles.sub_groups, None);
                let ptx = compile(&arts[0]);
                assert!(ptx.contains(&format!(".entry {}(", arts[0].kernels[1].entry_point)));
                assemble(&format!("{tag}-G"), &ptx, &scratch(&format!("{tag}-G")));
            }
        }
    }
}

/// Session 36 (s36-mqa): all sub-groups of 8 of a KV head sharing one block's staged K/V
/// tiles (`A`), with `WARPS` warps per MMA column tile. The forms measured on the H200
/// compile for groups of 16, 32 and 12 (2 × 6) in f16 and bf16 (each MMA type on some
/// shape; every pair under `MOA_TEST_FULL=1`); the ABI's block, key tile
/// and `tiles.sub_groups` follow the form, and ptxas's registers and spills of each decode
/// kernel are printed (`--nocapture`, with `MOA_PTXAS`; head_dim 128: 4x3 and 4x5 128
/// registers, no spills).
#[test]
fn sub_groups_sharing_a_block_compile_for_sm90() {
    for (shape, (q_heads, kv_heads, head_dim)) in
        [(32, 2, 128), (32, 1, 128), (16, 1, 64), (24, 2, 128)]
            .into_iter()
            .enumerate()
    {
        let plan = Plan::dense(ModelShape {
            name: None,
            layers: 1,
            q_heads,
            kv_heads,
            head_dim,
            max_context_tokens: 4096,
        })
        .unwrap();
        let group = q_heads / kv_heads;
        // The first shape in both MMA types, each other in one (`common::sweeps`).
        for (s, storage) in [StorageType::F16, StorageType::Bf16]
            .into_iter()
            .enumerate()
        {
            if !sweeps::runs(shape, shape == 0, s, 2) {
                continue;
            }
            let module = lower(&plan, storage);
            for v in ["4x3eqmskvA", "4x5eqmskvA"] {
                let tuning: cuda::DecodeTuning = v.parse().unwrap_or_else(|e| panic!("{e}"));
                let tag = format!(
                    "share{q_heads}-{kv_heads}-{head_dim}-{}-{v}",
                    storage.name()
                );
                let arts = cuda::generate_tuned(&module, tuning).unwrap_or_else(|e| panic!("{e}"));
                let abi = &arts[0].kernels[1].abi;
                assert_eq!(abi.tiles.sub_groups, None, "{tag}");
                assert_eq!(abi.block[0], 32 * tuning.warps * group.div_ceil(8), "{tag}");
                assert_eq!(abi.tiles.k_tile, Some(16 * tuning.warps), "{tag}");
                let ptx = compile(&arts[0]);
                let entry = &arts[0].kernels[1].entry_point;
                assert!(
                    ptx.contains(&format!(".entry {entry}(")),
                    "{tag}: PTX lacks {entry}"
                );
                let log = assemble(&tag, &ptx, &scratch(&tag));
                let mut in_decode = false;
                for line in log.lines() {
                    if line.contains("Compiling entry function") {
                        in_decode = line.contains(entry.as_str());
                    }
                    if in_decode && (line.contains("registers") || line.contains("spill")) {
                        eprintln!("{tag}: {}", line.trim());
                    }
                }
            }
        }
    }
}

/// The prefill source has two tensor-core bodies: wgmma where it is compiled for sm_90a
/// (the default, checked above) and mma.sync elsewhere; this compiles the portable one.
#[test]
fn prefill_compiles_without_sm90a_features() {
    for (name, storage) in [
        ("fixture-gqa.toml", StorageType::F16),
        ("fixture-mha.toml", StorageType::F16),
    ] {
        let module = lower(&fixture(name), storage);
        let arts = cuda::generate(&module).unwrap_or_else(|e| panic!("{e}"));
        for a in &arts {
            for arch in ["sm_90"] {
                let ptx = compile_for(a, arch);
                for k in &a.kernels {
                    assert!(
                        ptx.contains(&format!(".entry {}(", k.entry_point)),
                        "{} ({arch}): PTX lacks entry {}",
                        a.path,
                        k.entry_point
                    );
                }
                assert!(!ptx.contains("wgmma"), "{} ({arch}) uses wgmma", a.path);
            }
        }
    }
    // And the default build of a head_dim-64 layer does use warpgroup MMA.
    let module = lower(&fixture("fixture-gqa.toml"), StorageType::F16);
    let arts = cuda::generate(&module).unwrap_or_else(|e| panic!("{e}"));
    assert!(compile(&arts[0]).contains("wgmma.mma_async"));
}

/// Every prefill shape the benchmark compares (`bench_prefill --variants`) compiles in both
/// bodies: the overlapped wgmma pipeline, 3 warpgroups, 128-key tiles, P in one or two
/// parts, the warp-specialized producer / consumer kernel (`w`) and the mma.sync fallback
/// with the same tile constants, at head_dim 128 in bf16 (the shape of the upstream plans,
/// where registers are tightest).
#[test]
fn prefill_variants_compile() {
    let module = lower(&llama3_8b(), StorageType::Bf16);
    let variants = [
        "2x64x2",
        "2x64x2p",
        "2x64x1",
        "3x64x1",
        "1x64x2s",
        "3x64x1os",
        "2x128x1os",
        "2x64x1w",
        "2x128x1w",
        "2x64x1pw",
        "2x64x1wg",
        "2x64x1pwg",
        "2x64x1owg",
        "2x64x1opwg",
        "2x64x1ow",
        "2x64x1owgr",
        "2x64x1owgnc",
        "2x64x1wgnc",
        "2x64x1owgnck",
        "2x64x1owgnct",
    ];
    // Every choice in CI, inside its longest combination (`common::sweeps::cover`).
    for (i, v) in sweeps::cover(&variants).into_iter().enumerate() {
        let tuning: cuda::PrefillTuning = v.parse().unwrap_or_else(|e| panic!("{e}"));
        let arts = cuda::generate_variant(&module, cuda::DecodeTuning::default(), tuning)
            .unwrap_or_else(|e| panic!("{v}: {e}"));
        // The mma.sync body of every fourth variant (of each under `MOA_TEST_FULL=1`): it
        // shares the variants' tile constants, not their wgmma pipelines, and each compile
        // is seconds of CI (`common::sweeps`).
        let archs: &[&str] = if i % 4 == 0 || sweeps::full() {
            &[DEFAULT_ARCH, "sm_90"]
        } else {
            &[DEFAULT_ARCH]
        };
        for &arch in archs {
            let ptx = compile_for(&arts[0], arch);
            assert_eq!(
                ptx.contains("wgmma.mma_async"),
                arch == DEFAULT_ARCH,
                "{v} {arch}"
            );
            if arch == DEFAULT_ARCH {
                // ptxas silently serializes wgmma (advisories C7510..C7520) when other
                // instructions touch an in-flight MMA's registers: the overlap would be lost.
                // Without overlap each MMA group is waited at once anyway, so there it is
                // only reported: the bf16 kernels with P in two parts at 128 registers
                // (2x64x2) get C7512, and benches/RESULTS.md measures what that costs.
                let log = assemble(&format!("variant-{v}"), &ptx, &scratch("variants"));
                for line in log.lines().filter(|l| l.contains("are serialized")) {
                    assert!(!tuning.overlap && !tuning.warp_specialized, "{v}: {log}");
                    eprintln!("{v}: {}", line.trim());
                }
                // The warp-specialized consumers have the registers for P in two parts: no
                // spills either (the point of the variant; DESIGN §6.1).
                if tuning.warp_specialized {
                    assert!(
                        !log.lines().any(|l| l.contains("bytes spill")
                            && !l.contains(" 0 bytes spill stores, 0 bytes spill loads")),
                        "{v} spills: {log}"
                    );
                }
                // Registers per thread, in the CI log (2 blocks of 256 threads: at most 128).
                for line in log.lines().filter(|l| l.contains("registers")) {
                    eprintln!("{v}: {}", line.trim());
                }
            }
        }
    }
}

/// The warp-specialized prefill (`w`) on the fixtures' other shapes (head_dim 64, f16 and
/// bf16; the f32 layers keep the scalar kernel), as `cuda_check --prefill-variant 2x64x1w`
/// runs them: the wgmma body for sm_90a and the mma.sync body, whose producer warpgroup
/// idles, for sm_90.
#[test]
fn warp_specialized_prefill_compiles_on_fixtures() {
    let tuning: cuda::PrefillTuning = "2x64x1w".parse().unwrap_or_else(|e| panic!("{e}"));
    for name in ["fixture-mha.toml", "fixture-gqa.toml"] {
        for storage in [StorageType::F16, StorageType::Bf16] {
            let module = lower(&fixture(name), storage);
            let arts = cuda::generate_variant(&module, cuda::DecodeTuning::default(), tuning)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(arts[0].kernels[0].abi.block, [384, 1, 1]);
            for arch in [DEFAULT_ARCH, "sm_90"] {
                let ptx = compile_for(&arts[0], arch);
                assert_eq!(
                    ptx.contains("setmaxnreg"),
                    arch == DEFAULT_ARCH && cuda::prefill_wgmma(storage, module.shape.head_dim),
                    "{name} {} {arch}",
                    storage.name()
                );
                if arch == DEFAULT_ARCH {
                    let tag = format!("ws-{name}-{}", storage.name()).replace('.', "_");
                    let log = assemble(&tag, &ptx, &scratch("ws"));
                    assert!(!log.contains("are serialized"), "{tag}: {log}");
                }
            }
        }
    }
}

#[test]
fn llama3_8b_upstream_plan_compiles_for_sm90() {
    let plan = llama3_8b();
    // Layers differ only in their baked rules (the switch tables), so a spread of layers
    // covers every distinct kernel while keeping the test under ~30 s on a small CI box.
    // f16 (the storage the wgpu runtime uses): every fourth layer and the last one.
    let module = lower(&plan, StorageType::F16);
    assert_eq!(
        compile_module("llama-f16", &module, |l| l % 4 == 0 || l == 31),
        9
    );
    // bf16 (what 7B-class checkpoints ship in): the tensor-core decode's other MMA type.
    let module = lower(&plan, StorageType::Bf16);
    assert_eq!(
        compile_module("llama-bf16", &module, |l| l == 0 || l == 31),
        2
    );
    // f32: the same templates with another element type.
    let module = lower(&plan, StorageType::F32);
    assert_eq!(
        compile_module("llama-f32", &module, |l| l == 0 || l == 31),
        2
    );
}

#[test]
fn generated_sources_are_deterministic_and_named() {
    let module = lower(&fixture("fixture-gqa.toml"), StorageType::F16);
    let a = cuda::generate(&module).unwrap_or_else(|e| panic!("{e}"));
    let b = cuda::generate(&module).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a, b);
    for (art, src) in a.iter().zip(&b) {
        assert_eq!(art.source, src.source);
    }
    let paths: Vec<&str> = a.iter().map(|x| x.path.as_str()).collect();
    assert_eq!(paths, ["cuda/l00.cu", "cuda/l01.cu", "cuda/l02.cu"]);
    let names: Vec<&str> = a
        .iter()
        .flat_map(|x| x.kernels.iter().map(|k| k.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            "moa_prefill_f16_hd64_l00",
            "moa_decode_f16_hd64_l00",
            "moa_prefill_f16_hd64_l01",
            "moa_decode_f16_hd64_l01",
            "moa_prefill_f16_hd64_l02",
            "moa_decode_f16_hd64_l02",
        ]
    );
}

/// The decode shapes the benchmark compares (`attention_bench --variants`): warp-private
/// pipelines and other warp / stage counts compile too (first layer of each fixture, the
/// tensor-core kernel in both MMA types).
#[test]
fn decode_variants_compile_for_sm90() {
    let modules: Vec<(&str, StorageType, KernelModule)> = ["fixture-mha.toml", "fixture-gqa.toml"]
        .into_iter()
        .flat_map(|name| {
            [StorageType::F16, StorageType::Bf16]
                .map(|storage| (name, storage, lower(&fixture(name), storage)))
        })
        .collect();
    for (c, v) in [
        "4x3",
        "4x3w",
        "2x6w",
        "4x2w",
        "2x6",
        "4x3e",
        "4x3m",
        "4x3we",
        "4x3ez",
        "4x3eqmskh",
        "4x3eqmskvj",
        "4x3eiclmsj",
    ]
    .into_iter()
    .enumerate()
    {
        // Each file holds the layer's prefill too: the default on both fixtures in both
        // storage types, each other variant on one of the four (`common::sweeps`).
        for (r, (name, storage, module)) in modules.iter().enumerate() {
            if !sweeps::runs(c, c == 0, r, modules.len()) {
                continue;
            }
            let tuning: cuda::DecodeTuning = v.parse().unwrap_or_else(|e| panic!("{e}"));
            let arts = cuda::generate_tuned(module, tuning).unwrap_or_else(|e| panic!("{e}"));
            let ptx = compile(&arts[0]);
            let entry = &arts[0].kernels[1].entry_point;
            assert!(
                ptx.contains(&format!(".entry {entry}(")),
                "{name} {} {v}: PTX lacks {entry}",
                storage.name()
            );
        }
    }
}

/// Clusters of up to 16 (`h`, session 19): the manifest's `tiles.cluster` says 16 and
/// the source merges in groups of 8 ranks; the default says 8 and keeps the portable
/// merge, byte for byte as before (no group merge in its source).
#[test]
fn the_wide_cluster_kernel_says_so_in_its_abi() {
    let module = lower(&fixture("fixture-gqa.toml"), StorageType::Bf16);
    let wide = cuda::DecodeTuning {
        wide_clusters: true,
        ..cuda::DecodeTuning::default_for(4)
    };
    let arts = cuda::generate_tuned(&module, wide).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(arts[0].kernels[1].abi.tiles.cluster, Some(16));
    assert!(arts[0]
        .source
        .contains("constexpr unsigned MAX_CLUSTER = 16;"));
    assert!(arts[0].source.contains("cluster_merge_element("));
    let plain = cuda::generate_tuned(&module, cuda::DecodeTuning::default_for(4))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plain[0].kernels[1].abi.tiles.cluster, Some(8));
    assert!(plain[0]
        .source
        .contains("constexpr unsigned MAX_CLUSTER = 8;"));
    assert!(!plain[0].source.contains("cluster_merge_element("));
    assert!(arts[0].source.len() > plain[0].source.len());
}

/// The decode entry's PTX (from its `.entry` to the next entry or the end).
fn decode_entry<'a>(ptx: &'a str, entry: &str) -> &'a str {
    let start = ptx
        .find(&format!(".entry {entry}("))
        .unwrap_or_else(|| panic!("PTX lacks {entry}"));
    let rest = &ptx[start..];
    let end = rest[1..].find(".entry ").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

/// Early loads (`DecodeTuning::early_loads`, DESIGN §6): the tensor-core decode issues its
/// first tiles' `cp.async` before `griddepcontrol.wait`, and without them after it; the
/// warp-private pipelines and the f32 kernel keep the wait first. The fast merge replaces
/// the fences in every thread by one acquire-release atomic.
#[test]
fn decode_early_loads_issue_tiles_before_the_grid_wait() {
    for (storage, v, early, fast) in [
        (StorageType::Bf16, "4x3em", true, true),
        (StorageType::F16, "4x3e", true, false),
        (StorageType::Bf16, "4x3m", false, true),
        (StorageType::Bf16, "4x3", false, false),
        (StorageType::Bf16, "4x3we", false, false),
        (StorageType::F32, "4x3em", false, true),
    ] {
        let module = lower(&fixture("fixture-gqa.toml"), storage);
        let tuning: cuda::DecodeTuning = v.parse().unwrap_or_else(|e| panic!("{e}"));
        let arts = cuda::generate_tuned(&module, tuning).unwrap_or_else(|e| panic!("{e}"));
        let ptx = compile(&arts[0]);
        let body = decode_entry(&ptx, &arts[0].kernels[1].entry_point);
        let wait = body.find("griddepcontrol.wait").expect("the grid wait");
        if storage != StorageType::F32 {
            let copy = body.find("cp.async.cg.shared.global").expect("cp.async");
            assert_eq!(
                copy < wait,
                early,
                "{} {v}: cp.async before the wait",
                storage.name()
            );
        }
        assert_eq!(
            body.contains("atom.acq_rel.gpu.global.add.u32"),
            fast,
            "{} {v}: acquire-release arrival",
            storage.name()
        );
        assert_eq!(
            body.contains("membar.gl"),
            !fast,
            "{} {v}: fences",
            storage.name()
        );
    }
}

/// The decode options of session 12 (DESIGN §6, "The launch's fixed cost, placed") and
/// its probe compile for sm_90: the lean epilogue (`s`, the default) stores the warps'
/// states without a barrier before them, so its decode entry has one `bar.sync` fewer
/// than the same kernel without it; the ticket merge (`t`) takes relaxed tickets,
/// publishes with release adds and waits with acquire loads; the full prologue (`f`),
/// wide merge batches (`b`) and the no-epilogue probe (`x`) compile.
#[test]
fn decode_session12_options_compile() {
    let module = lower(&fixture("fixture-gqa.toml"), StorageType::Bf16);
    let body_of = |v: &str| {
        let tuning: cuda::DecodeTuning = v.parse().unwrap_or_else(|e| panic!("{e}"));
        let arts = cuda::generate_tuned(&module, tuning).unwrap_or_else(|e| panic!("{e}"));
        let ptx = compile(&arts[0]);
        decode_entry(&ptx, &arts[0].kernels[1].entry_point).to_string()
    };
    let barriers = |b: &str| b.matches("bar.sync").count();
    let (lean, plain) = (body_of("4x3ems"), body_of("4x3em"));
    assert_eq!(
        barriers(&lean) + 1,
        barriers(&plain),
        "4x3ems: one barrier fewer"
    );
    let ticket = body_of("4x3emst");
    for needle in [
        "atom.relaxed.gpu.global.add.u32",
        "red.release.gpu.global.add.u32",
        "ld.acquire.gpu.global.u32",
    ] {
        assert!(ticket.contains(needle), "4x3emst lacks {needle}");
    }
    for v in ["4x3efmsb", "4x3emx"] {
        assert!(body_of(v).contains("mma.sync.aligned.m16n8k16"), "{v}");
    }
}

/// Refill when free (`r`, DESIGN §6): the decode refills a stage after a block barrier
/// that follows the math, so its entry has more barriers than the same kernel without
/// it; with the stream-only probe (`z`), the no-epilogue probe (`x`) and arrival barriers
/// (`a`: the copies counted by mbarriers) it compiles too.
#[test]
fn decode_refill_when_free_compiles() {
    let module = lower(&fixture("fixture-gqa.toml"), StorageType::Bf16);
    let body_of = |v: &str| {
        let tuning: cuda::DecodeTuning = v.parse().unwrap_or_else(|e| panic!("{e}"));
        let arts = cuda::generate_tuned(&module, tuning).unwrap_or_else(|e| panic!("{e}"));
        let ptx = compile(&arts[0]);
        decode_entry(&ptx, &arts[0].kernels[1].entry_point).to_string()
    };
    let barriers = |b: &str| b.matches("bar.sync").count();
    let (refill, plain) = (body_of("4x3emsr"), body_of("4x3ems"));
    assert!(
        barriers(&refill) > barriers(&plain),
        "4x3emsr: a barrier after the math"
    );
    for v in ["4x3erz", "4x3ermsx", "4x3efrms", "4x3eraz", "4x3eramsx"] {
        assert!(body_of(v).contains("cp.async.cg.shared.global"), "{v}");
    }
    // With arrival barriers the warps wait on the stages' mbarriers, one block barrier
    // per tile fewer.
    let arrive = body_of("4x3erams");
    assert!(
        arrive.contains("cp.async.mbarrier.arrive.noinc"),
        "4x3erams"
    );
    assert!(arrive.contains("mbarrier.try_wait.parity"), "4x3erams");
}

/// Session 15's decode options (DESIGN §6): four Q·Kᵀ chains (`c`) and the lazy rescale
/// (`l`, a warp vote decides whether a tile keeps the running max) compile for both
/// fixtures and both MMA types, alone and together, with the stream-and-math probe (`x`).
#[test]
fn decode_session15_options_compile() {
    for name in ["fixture-mha.toml", "fixture-gqa.toml"] {
        for storage in [StorageType::F16, StorageType::Bf16] {
            let module = lower(&fixture(name), storage);
            let body_of = |v: &str| {
                let tuning: cuda::DecodeTuning = v.parse().unwrap_or_else(|e| panic!("{e}"));
                let arts = cuda::generate_tuned(&module, tuning).unwrap_or_else(|e| panic!("{e}"));
                let ptx = compile(&arts[0]);
                decode_entry(&ptx, &arts[0].kernels[1].entry_point).to_string()
            };
            let plain = body_of("4x3ems");
            assert!(!plain.contains("vote.sync.all"), "{name} 4x3ems");
            for v in ["4x3ecms", "4x3elms", "4x3eclms", "4x3eclmsx"] {
                let body = body_of(v);
                assert!(body.contains("mma.sync.aligned.m16n8k16"), "{name} {v}");
                assert_eq!(
                    body.contains("vote.sync.all"),
                    v.contains('l'),
                    "{name} {} {v}: the lazy rescale's vote",
                    storage.name()
                );
            }
        }
    }
}

/// Session 16's decode options (DESIGN §6): Q first (`q`: Q's loads issued before the first
/// use of `row_pos`, i.e. before the ring position's `rem.u32`) and the push merge (`p`:
/// cluster chunks `st.async` their states into the merging block, counted by its
/// mbarrier, with no `barrier.cluster` release and no remote loads) compile for both
/// fixtures and both MMA types, alone and together with session 15's letters.
#[test]
fn decode_session16_options_compile() {
    for name in ["fixture-mha.toml", "fixture-gqa.toml"] {
        for storage in [StorageType::F16, StorageType::Bf16] {
            let module = lower(&fixture(name), storage);
            let body_of = |v: &str| {
                let tuning: cuda::DecodeTuning = v.parse().unwrap_or_else(|e| panic!("{e}"));
                let arts = cuda::generate_tuned(&module, tuning).unwrap_or_else(|e| panic!("{e}"));
                let ptx = compile(&arts[0]);
                decode_entry(&ptx, &arts[0].kernels[1].entry_point).to_string()
            };
            // Loads of Q (non-coherent 32-bit loads) between the grid wait and the ring
            // position's remainder, the first use of row_pos.
            let q_before_row_pos = |b: &str| {
                let wait = b.find("griddepcontrol.wait").expect("the grid wait");
                let rem = wait + b[wait..].find("rem.u32").expect("the ring position");
                b[wait..rem].matches("ld.global.nc.u32").count()
            };
            let plain = body_of("4x3ems");
            // row_pos alone.
            assert_eq!(
                q_before_row_pos(&plain),
                1,
                "{name} {} 4x3ems",
                storage.name()
            );
            for v in ["4x3eqms", "4x3emps", "4x3eqmps", "4x3eqiclmps"] {
                let body = body_of(v);
                let tag = format!("{name} {} {v}", storage.name());
                assert!(body.contains("mma.sync.aligned.m16n8k16"), "{tag}");
                assert_eq!(
                    q_before_row_pos(&body) > 1,
                    v.contains('q'),
                    "{tag}: Q first"
                );
                for needle in [
                    "st.async.shared::cluster.mbarrier::complete_tx::bytes.b32",
                    "barrier.cluster.arrive.relaxed",
                    "mbarrier.try_wait.parity.acquire.cluster",
                ] {
                    assert_eq!(body.contains(needle), v.contains('p'), "{tag}: {needle}");
                }
                assert_eq!(
                    body.contains("ld.shared::cluster.f32"),
                    !v.contains('p'),
                    "{tag}: remote loads"
                );
            }
        }
    }
}

/// Session 17's decode option (DESIGN §6): exit arrive first (`o`: the cluster merge
/// arrives at its exit barrier before its O stores, so the arrive's release fence has no
/// store to wait for) compiles for both fixtures and both MMA types, with the GQA and the
/// MHA defaults; in its PTX the O stores lie between the last `barrier.cluster.arrive`
/// and the last `barrier.cluster.wait`, and in the defaults' they do not.
#[test]
fn decode_session17_exit_arrive_compiles() {
    for name in ["fixture-mha.toml", "fixture-gqa.toml"] {
        for storage in [StorageType::F16, StorageType::Bf16] {
            let module = lower(&fixture(name), storage);
            for (v, exit_first) in [
                ("4x3eqms", false),
                ("4x3eqmso", true),
                ("4x3eiclms", false),
                ("4x3eiclmso", true),
            ] {
                let tuning: cuda::DecodeTuning = v.parse().unwrap_or_else(|e| panic!("{e}"));
                let arts = cuda::generate_tuned(&module, tuning).unwrap_or_else(|e| panic!("{e}"));
                let ptx = compile(&arts[0]);
                let body = decode_entry(&ptx, &arts[0].kernels[1].entry_point);
                let tag = format!("{name} {} {v}", storage.name());
                assert!(body.contains("mma.sync.aligned.m16n8k16"), "{tag}");
                let arrive = body
                    .rfind("barrier.cluster.arrive")
                    .expect("the exit arrive");
                let wait = body.rfind("barrier.cluster.wait").expect("the exit wait");
                assert!(
                    arrive < wait,
                    "{tag}: the exit barrier's wait follows its arrive"
                );
                assert_eq!(
                    body[arrive..wait].contains("st.global"),
                    exit_first,
                    "{tag}: O stores between the exit arrive and its wait"
                );
            }
        }
    }
}

/// Session 18's decode letters (DESIGN §6): the combine unrolled (`k`), the counter merge on
/// cluster lists (`g`) and the probes `y` / `n` compile for both fixtures and both MMA types
/// with the GQA and the MHA defaults. `g` leaves no cluster exchange in the PTX (no
/// `ld.shared::cluster`: a cluster launch merges through the arrival counter); `k` and the
/// defaults keep it, and so do the probes, which skip it at run time behind a test the
/// compiler cannot fold (so ptxas allocates their registers as for the full kernel).
#[test]
fn decode_session18_letters_compile() {
    for name in ["fixture-mha.toml", "fixture-gqa.toml"] {
        for storage in [StorageType::F16, StorageType::Bf16] {
            let module = lower(&fixture(name), storage);
            for (v, exchange, counter) in [
                ("4x3eqms", true, true),
                ("4x3eqmsk", true, true),
                ("4x3eqmsg", false, true),
                ("4x3eqmskg", false, true),
                ("4x3eqmsy", true, true),
                ("4x3eqmskn", true, true),
                ("4x3eiclms", true, true),
                ("4x3eiclmsk", true, true),
            ] {
                let tuning: cuda::DecodeTuning = v.parse().unwrap_or_else(|e| panic!("{e}"));
                let arts = cuda::generate_tuned(&module, tuning).unwrap_or_else(|e| panic!("{e}"));
                let ptx = compile(&arts[0]);
                let body = decode_entry(&ptx, &arts[0].kernels[1].entry_point);
                let tag = format!("{name} {} {v}", storage.name());
                assert!(body.contains("mma.sync.aligned.m16n8k16"), "{tag}");
                assert_eq!(
                    body.contains("ld.shared::cluster.f32"),
                    exchange,
                    "{tag}: the cluster exchange"
                );
                assert_eq!(
                    body.contains("atom.acq_rel.gpu.global.add.u32"),
                    counter,
                    "{tag}: the arrival counter"
                );
            }
        }
    }
}

/// Session 20's decode letter (DESIGN §6): half partials (`v`) compile for both fixtures
/// and both MMA types with the GQA and the MHA defaults. With `v` the merge loads each
/// chunk's pair of elements as one 32-bit word (`ld.global.cg.u32`) and no f32 partial
/// sum; without it, or at a head_dim that is not a multiple of 64 (fixture-mha's 32, where
/// `v` does not apply), the merge loads f32 sums (`ld.global.cg.f32`). Both keep the
/// arrival counter and the cluster exchange.
#[test]
fn decode_session20_half_partials_compile() {
    for name in ["fixture-mha.toml", "fixture-gqa.toml"] {
        for storage in [StorageType::F16, StorageType::Bf16] {
            let module = lower(&fixture(name), storage);
            let applies = module.shape.head_dim.is_multiple_of(64);
            for (v, letter) in [
                ("4x3eqmsk", false),
                ("4x3eqmskv", true),
                ("4x3eiclms", false),
                ("4x3eiclmsv", true),
            ] {
                let half = letter && applies;
                let tuning: cuda::DecodeTuning = v.parse().unwrap_or_else(|e| panic!("{e}"));
                let arts = cuda::generate_tuned(&module, tuning).unwrap_or_else(|e| panic!("{e}"));
                let ptx = compile(&arts[0]);
                let body = decode_entry(&ptx, &arts[0].kernels[1].entry_point);
                let tag = format!("{name} {} {v}", storage.name());
                assert!(body.contains("mma.sync.aligned.m16n8k16"), "{tag}");
                assert!(body.contains("atom.acq_rel.gpu.global.add.u32"), "{tag}");
                assert!(body.contains("ld.shared::cluster.f32"), "{tag}");
                assert_eq!(
                    body.contains("ld.global.cg.f32"),
                    !half,
                    "{tag}: f32 partials"
                );
                assert_eq!(
                    body.contains("ld.global.cg.u32"),
                    half,
                    "{tag}: half partials"
                );
            }
        }
    }
}

/// The decode kernels merge a segment held by a thread-block cluster through distributed
/// shared memory (docs/DESIGN.md §6), and keep the arrival-counter merge through global
/// memory for plain launches: both paths are in the PTX of the tensor-core (bf16) and the
/// scalar (f32) kernel.
#[test]
fn decode_merges_clusters_in_distributed_shared_memory() {
    for storage in [StorageType::Bf16, StorageType::F32] {
        let module = lower(&fixture("fixture-gqa.toml"), storage);
        let arts = cuda::generate(&module).unwrap_or_else(|e| panic!("{e}"));
        let ptx = compile(&arts[0]);
        for needle in [
            "%cluster_nctarank",
            "barrier.cluster.arrive.release",
            "barrier.cluster.wait.acquire",
            "mapa.shared::cluster",
            "ld.shared::cluster.f32",
            // The counter merge's arrival (the fast merge's one acquire-release atomic).
            "atom.acq_rel.gpu.global.add.u32",
        ] {
            assert!(
                ptx.contains(needle),
                "{storage:?} decode PTX lacks `{needle}`"
            );
        }
    }
}

/// P·V on f16 operands (`h`, DESIGN §6.1) in the three warp-specialized schedules, at the
/// upstream plans' shape (bf16, head_dim 128): the f16 wgmma is there on sm_90a, the
/// producer's V conversion neither spills (40 registers) nor makes ptxas serialize the
/// consumers' MMAs; f16 storage generates exactly the source without `h` (nothing to
/// convert), and sm_90 keeps the two-part mma.sync body.
#[test]
fn pv_f16_prefill_compiles() {
    let module = lower(&llama3_8b(), StorageType::Bf16);
    let variants = [
        "2x64x1owgh",
        "2x64x1wgh",
        "2x64x1wh",
        "2x128x1owgh",
        "2x64x1owghv",
        "2x64x1wghv",
        "2x64x1owghvr",
        "2x64x1owghvu",
        "2x64x1owghvuq",
        "2x64x1owghvue",
        "3x64x1owghvu",
        "2x128x1owghvu",
        "3x64x1owghvunc",
        "3x64x1owghvun",
        "3x64x1owghvuc",
        "2x64x1owghvunc",
        "3x64x1owghvunck",
        "2x64x1owghvunck",
        "3x64x1owghvunct",
        "2x64x1owghvunct",
        "3x64x1owghvunca",
        "3x64x1owghvuncaf",
        "3x64x1owghvunctf",
        "3x64x1owghvuncafm",
        "3x64x1owghvunctfm",
        "3x64x1owghvuncafbm",
        "3x64x1owghvunctfbm",
        "3x64x1owghvuncafbdm",
        "3x64x1owghvunctfbdm",
        "3x64x1owghvuncafbdzm",
        "3x64x1owghvunctfbdHQm",
    ];
    // Every choice in CI, inside its longest combination (`common::sweeps::cover`).
    for (i, v) in sweeps::cover(&variants).into_iter().enumerate() {
        let tuning: cuda::PrefillTuning = v.parse().unwrap_or_else(|e| panic!("{e}"));
        let arts = cuda::generate_variant(&module, cuda::DecodeTuning::default(), tuning)
            .unwrap_or_else(|e| panic!("{v}: {e:?}"));
        let ptx = compile_for(&arts[0], DEFAULT_ARCH);
        assert!(ptx.contains("m64n128k16.f32.f16.f16"), "{v}: no f16 P·V");
        assert!(ptx.contains("k16.f32.bf16.bf16"), "{v}: Q·Kᵀ stays bf16");
        let log = assemble(&format!("pvf16-{v}"), &ptx, &scratch("pvf16"));
        assert!(!log.contains("are serialized"), "{v}: {log}");
        assert!(
            !log.lines().any(|l| l.contains("bytes spill")
                && !l.contains(" 0 bytes spill stores, 0 bytes spill loads")),
            "{v} spills: {log}"
        );
        for line in log.lines().filter(|l| l.contains("registers")) {
            eprintln!("{v}: {}", line.trim());
        }
        // The mma.sync body of every fourth variant (`prefill_variants_compile`).
        if i % 4 == 0 || sweeps::full() {
            let portable = compile_for(&arts[0], "sm_90");
            assert!(!portable.contains("f16.f16"), "{v}: sm_90 body in f16");
        }
        // `v`: the pre-pass kernels are in the module, and the prefill takes VF16 + VMax.
        let prefill = arts[0]
            .kernels
            .iter()
            .find(|k| k.phase == Phase::Prefill)
            .unwrap();
        let takes_f16 = prefill.abi.params.iter().any(|p| p.arg == Arg::VF16);
        assert_eq!(takes_f16, tuning.v_f16_in, "{v}");
        // `u`: its one-read form (`_vcvt`, `_vfix`) in place of `_vmax`, `_vf16`.
        let (two_reads, one_read) = (
            tuning.v_f16_in && !tuning.v_unit,
            tuning.v_f16_in && tuning.v_unit,
        );
        assert_eq!(ptx.contains("_vf16("), two_reads, "{v}");
        assert_eq!(ptx.contains("_vmax("), two_reads, "{v}");
        assert_eq!(ptx.contains("_vcvt("), one_read, "{v}");
        assert_eq!(ptx.contains("_vfix("), one_read, "{v}");
    }
    let f16 = lower(&llama3_8b(), StorageType::F16);
    let with: cuda::PrefillTuning = "2x64x1owgh".parse().unwrap();
    let without: cuda::PrefillTuning = "2x64x1owg".parse().unwrap();
    let a = cuda::generate_variant(&f16, cuda::DecodeTuning::default(), with).unwrap();
    let b = cuda::generate_variant(&f16, cuda::DecodeTuning::default(), without).unwrap();
    assert_eq!(a[0].source, b[0].source);
}

/// `common::sweeps::cover` keeps the sweep's first variant and every letter and number of
/// the list, in fewer variants than the list (unless `MOA_TEST_FULL=1`).
#[test]
fn a_covering_sweep_keeps_every_letter() {
    let list = [
        "2x64x1owg",
        "2x64x1wg",
        "2x128x1owg",
        "3x64x1owgnc",
        "2x64x1owgnck",
    ];
    let chosen = sweeps::cover(&list);
    assert_eq!(chosen[0], list[0]);
    let letters = |vs: &[&str]| {
        let mut all: Vec<String> = vs
            .iter()
            .flat_map(|v| {
                let at = v.find(|c: char| c.is_ascii_alphabetic() && c != 'x');
                let (dims, flags) = v.split_at(at.unwrap_or(v.len()));
                (dims.split('x').enumerate().map(|(i, n)| format!("{i}={n}")))
                    .chain(flags.chars().map(String::from))
            })
            .collect();
        all.sort();
        all.dedup();
        all
    };
    assert_eq!(letters(&chosen), letters(&list));
    if !sweeps::full() {
        assert_eq!(
            chosen,
            ["2x64x1owg", "2x128x1owg", "3x64x1owgnc", "2x64x1owgnck"]
        );
    }
}
