//! The CUDA engine's op kernels compile with NVRTC for sm_90a in every storage type (no GPU
//! needed: `eval "$(scripts/cuda-deps.sh)"` first, as CI does). Where a CUDA driver and GPU
//! are present, the ops are checked against their CPU references and the engine's greedy
//! tokens against the CPU reference on a small random model; on a machine without a
//! driver those two tests say so and return (running them is `moa bench --check-ops
//! --parity`, on the GPU machine).

use moa::lower::StorageType;
use moa::model::random::{like, random_model};
use moa::runtime::cuda::engine::CudaLlama;
use moa::runtime::cuda::{bench, compile_artifact, ops, CudaError, DEFAULT_ARCH};
use moa::runtime::engine::Engine;

fn gpu_present() -> bool {
    match ops::open_context(0) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("no CUDA GPU here ({e}); skipping");
            false
        }
    }
}

#[test]
fn ops_compile_with_nvrtc_for_every_storage_type() {
    for s in [StorageType::F32, StorageType::F16, StorageType::Bf16] {
        match compile_artifact(&ops::artifact(s), DEFAULT_ARCH) {
            Ok(ptx) => {
                for k in ["moa_embed", "moa_rmsnorm", "moa_rope_kv", "moa_swiglu", "moa_argmax", "moa_sample", "moa_fill_random", "moa_copy"] {
                    assert!(ptx.contains(k), "{k} missing from the {s:?} PTX");
                }
            }
            Err(e @ (CudaError::NvrtcMissing { .. } | CudaError::HeadersMissing { .. })) => panic!(
                "{e}\n\nThis test needs NVRTC: run `eval \"$(scripts/cuda-deps.sh)\"` first (CI does)."
            ),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn ops_match_their_cpu_references_on_a_gpu() {
    if !gpu_present() {
        return;
    }
    for s in [StorageType::F32, StorageType::F16, StorageType::Bf16] {
        let results = ops::check(0, s, 3).unwrap();
        let bad: Vec<_> = results.iter().filter(|r| !r.passed).collect();
        assert!(bad.is_empty(), "{s:?}: {bad:#?}");
    }
}

#[test]
fn engine_greedy_tokens_match_the_cpu_reference_on_a_gpu() {
    if !gpu_present() {
        return;
    }
    let mut c = like("smollm2-135m").unwrap();
    c.n_layers = 3;
    c.vocab_size = 1000;
    let model = random_model(&c, 5);
    let prompts = vec![vec![1u32; 70], (0..33).collect(), vec![7; 5]];
    let rows = bench::parity(&model, None, &prompts, 12, &[StorageType::F32], None, 0).unwrap();
    for r in rows {
        assert_eq!(r.equal, r.total, "{r:?}");
    }
}

#[test]
fn a_sampled_prefill_copies_rows_equal_to_their_own_prefill_on_a_gpu() {
    if !gpu_present() {
        return;
    }
    let mut c = like("smollm2-135m").unwrap();
    c.n_layers = 3;
    c.vocab_size = 1000;
    let model = random_model(&c, 6);
    let r = bench::sampled_prefill_check(&model, None, 90, 10, 0).unwrap();
    assert_eq!(r.equal, r.total, "{r:?}");
}

#[test]
fn a_request_that_does_not_fit_is_an_error_naming_the_largest_batch() {
    if !gpu_present() {
        return;
    }
    let mut c = like("smollm2-135m").unwrap();
    c.n_layers = 2;
    c.vocab_size = 1000;
    let e = CudaLlama::random(&c, None, StorageType::Bf16, 0, 1).unwrap();
    let err = e
        .start(&vec![8000; 100_000], 100, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("rows fit"), "{err}");
}
