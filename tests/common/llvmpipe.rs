//! llvmpipe's LLVM optimisation passes off, for the test binaries whose time on lavapipe
//! is compiling kernels rather than running them.
//!
//! llvmpipe compiles each pipeline at its first dispatch, through LLVM's optimisation
//! passes. The kernel binaries (`wgpu_kernels`, `wgsl_decode_forms`) build hundreds of
//! distinct pipelines and run each on a few small cases, so on a fresh CI machine (an empty
//! Mesa shader cache) compiling is most of their time. Mesa's `GALLIVM_PERF=nopt` ("disable
//! optimization passes to speed up shader compilation", gallivm) keeps only the passes the
//! back end needs. Measured on 2 cores, cold cache (session 53, benches/RESULTS.md):
//! `wgpu_kernels` 239 → 166 s, `wgsl_decode_forms` 150 → 138 s; the model binaries run
//! longer instead (the grouped tests 454 → 503 s: SmolLM2's decode steps run the slower
//! code), so they keep the passes. Results do not change: the passes are IEEE-preserving
//! rewrites, and each test compares with its CPU reference at the same tolerance. Mesa
//! keys its shader cache by these flags, so the unoptimised kernels never reach a later
//! run of `moa` from the same cache.
#![allow(dead_code)]

/// Sets `GALLIVM_PERF=nopt` unless the variable is set already (a user's own choice
/// stands), once per process. Call it before the first `WgpuContext` of the binary, from
/// every test that opens one: the first call sets the variable while the others wait, so no
/// thread is inside the Vulkan driver, which reads the environment, while it changes.
pub fn compile_kernels_fast() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("GALLIVM_PERF").is_none() {
            std::env::set_var("GALLIVM_PERF", "nopt");
        }
    });
}
