#!/bin/bash
# Fills the carry folder of s24-prefill's call (run from the repository root after the
# release builds and the cubins): bench_prefill, cuda_check and the tests/cuda_engine.rs test
# binary gzipped, the cubins (cubins/, tr/ traced) as cubins.tar.xz, plans/
# (benches/prefill/s17/plans.sh), the call script, s19's blocked.py / ab_report.py.
#   cargo build --release --example bench_prefill --example cuda_check --example cuda_cubins
#   cargo test --release --no-run --test cuda_engine
#   source /work/cuda-env.sh; export MOA_CUDA_CACHE=/work/cuda-cache
#   V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
#   L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
#   cuda_cubins --out /tmp/s24p/cubins --dtypes bf16 --upstream v:32:$V --upstream l:8:$L \
#       --prefill-variants 3x64x1owghvuncafbdHQm,3x64x1owghvuncafbdHQGm,3x64x1owghvuncafbdm
#   cuda_cubins --out /tmp/s24p/cubins --dtypes f16,bf16 --upstream v:32:$V --upstream l:8:$L
#   cuda_cubins --out /tmp/s24p/cubins --dtypes f32,f16,bf16 plans/fixture-gqa.toml plans/fixture-mha.toml
#   cuda_cubins --out /tmp/s24p/cubins --dtypes bf16 --prefill-variants 2x64x1owghvunctbdHQ,2x64x1owghvunctbdHQG plans/fixture-gqa.toml
#   cuda_cubins --out /tmp/s24p/tr --lineinfo --edit "python3 benches/prefill/s23/trace_patch.py" --dtypes bf16 \
#       --upstream v:32:$V --layers-only 27 --prefill-variants 3x64x1owghvuncafbdHQm,3x64x1owghvuncafbdHQGm
#   NEW=/tmp/s24p bash benches/prefill/s24/pack.sh
# call 2 (at 8ff0085, letter L; the cuda_engine binary then left out of the carry):
#   cuda_cubins --out /tmp/s24p2/cubins --from /tmp/s24p/cubins --dtypes bf16 --upstream v:32:$V --upstream l:8:$L \
#       --prefill-variants 3x64x1owghvuncafbdHQm,3x64x1owghvuncafbdHQLm
#   cuda_cubins --out /tmp/s24p2/cubins --dtypes bf16 --prefill-variants 2x64x1owghvunctbdHQL plans/fixture-gqa.toml
#   cuda_cubins --out /tmp/s24p2/tr --lineinfo --edit "python3 benches/prefill/s23/trace_patch.py" --dtypes bf16 \
#       --upstream v:32:$V --layers-only 27 --prefill-variants 3x64x1owghvuncafbdHQm,3x64x1owghvuncafbdHQLm
#   NEW=/tmp/s24p2 bash benches/prefill/s24/pack.sh
set -e
D=${D:-/work/main/.dev-s24-prefill}
NEW=${NEW:-/tmp/s24p}
mkdir -p "$D"
D=$D bash benches/prefill/s17/plans.sh
gzip -c target/release/examples/bench_prefill > "$D/bench_prefill.gz"
gzip -c target/release/examples/cuda_check > "$D/cuda_check.gz"
E=$(ls -t target/release/deps/cuda_engine-* | grep -v '\.d$' | head -1)
gzip -c "$E" > "$D/cuda_engine.gz"
cp benches/prefill/s24/call*.sh benches/prefill/s19/blocked.py benches/prefill/s19/ab_report.py "$D/"
tar cf - -C "$NEW" $(cd "$NEW" && ls -d cubins tr 2>/dev/null) | xz -6 -T2 > "$D/cubins.tar.xz"
du -sh "$D"; ls "$D"
