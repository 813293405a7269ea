#!/bin/bash
# Fills the carry folder of s23-prefill's calls (run from the repository root after the
# release builds and the cubins): bench_prefill gzipped, the cubins (li/ with line tables,
# tr/ traced; see call1.sh) as cubins.tar.xz, plans/ (benches/prefill/s17/plans.sh), the
# call scripts, s19's blocked.py / ab_report.py.
#   cargo build --release --example bench_prefill --example cuda_cubins
#   source /work/cuda-env.sh; export MOA_CUDA_CACHE=/work/cuda-cache
#   V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
#   L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
#   cuda_cubins --out /tmp/s23p/li --lineinfo --dtypes bf16 --upstream v:32:$V --layers-only 21,22,27
#   cuda_cubins --out /tmp/s23p/li --lineinfo --dtypes bf16 --upstream l:8:$L --layers-only 29
#   cuda_cubins --out /tmp/s23p/tr --lineinfo --edit "python3 benches/prefill/s23/trace_patch.py" \
#       --dtypes bf16 --upstream v:32:$V --layers-only 22,27     # and l:8:$L --layers-only 29
#   (call 3: cuda_cubins --out /tmp/s23p/cubins ... --prefill-variants 3x64x1owghvuncafbdQm, and
#    --out /tmp/s23p/tr2 --lineinfo --edit ... --layers-only 27 --prefill-variants ...Qm,...HQm,...Hm)
#   NEW=/tmp/s23p bash benches/prefill/s23/pack.sh
set -e
D=${D:-/work/main/.dev-s23-prefill}
NEW=${NEW:-/tmp/s23p}
mkdir -p "$D"
D=$D bash benches/prefill/s17/plans.sh
gzip -c target/release/examples/bench_prefill > "$D/bench_prefill.gz"
[ -x target/release/examples/cuda_check ] && gzip -c target/release/examples/cuda_check > "$D/cuda_check.gz"
cp benches/prefill/s23/call*.sh benches/prefill/s19/blocked.py benches/prefill/s19/ab_report.py "$D/"
tar cf - -C "$NEW" $(cd "$NEW" && ls -d li tr tr2 cubins 2>/dev/null) | xz -6 -T2 > "$D/cubins.tar.xz"
du -sh "$D"; ls "$D"
