#!/bin/bash
# Device call 1 (session 18, branch s18-decode): what comes after the last tile, split; the
# combine unrolled (`k`) against the defaults (GQA 4x3eqms, MHA 4x3eiclms) over every layer
# of both plans, timed in blocks (every layer with A, then every layer with B, twice: an
# A/B and an A/A), SDPA and a device copy beside; the counter merge on cluster lists (`g`)
# and the wide merge (`b`) on the cells they address.
#
# Letters (codegen::cuda::DecodeTuning):
#   k  combine unrolled: the block's combine of the warps' states for all of a thread's
#      elements at once, branch-free (4 elements per thread for GQA-4, each behind its own
#      chain of LDS / fmax / exp2 / FMA with -inf branches in the default)
#   g  counter merge on cluster lists: a cluster launch merges through L2 as a plain list
#      does (partials, one acq_rel atomic, the last arrival merges), no cluster barriers
#   y  probe: the combine and the partial (or O) stores, no arrival / merge / cluster exchange
#   n  probe: the combine, its results stored to shared memory (no global store)
#   x  probe: the stream and the math, nothing after
# so n - x = the combine, y - n = the global stores (and their drain), full - y = the
# arrival and the merge (plain lists) or the cluster exchange (cluster lists).
#
# Predicted (before the call):
#   split, Llama-3-8B B = 16 4k cluster lists (25/27/29): n - x 0.5-0.8 µs, y - n 0.3-0.6,
#     full - y 1.5-2.5; Llama plain lists (B = 16 4k 19/23, B = 4 16k 4/7/25): n - x
#     0.5-0.8, y - n ~0.5, full - y 2.5-3 (3.5+ on B = 4 16k 27/29, 17-22 chunks);
#     Vicuna-7B B = 4 4k (MHA, one element per thread): n - x 0.2-0.4, y - n ~0.3,
#     full - y 1.2-1.5.
#   k: -0.2 to -0.5 µs per launch on Llama (every list), 0 to -0.1 on Vicuna; Llama B = 16
#     4k layer 25 (needs 0.54-0.65 µs) may pass, 27 / 29 not; Llama B = 4 16k +0-2 layers
#     at 3.8 TB/s.
#   g: slower on cluster lists, +0.3 to +1 µs (three dependent L2 round trips against two
#     cluster barriers and one DSMEM round), equal on plain lists.
#   b: Llama B = 4 16k layers 27 / 29 -1.1 / -1.4 µs (session 12's call 19), neither passes.
#
# Carry .dev-s18-decode (benches/decode-h200/s16/pack.sh, then spans.json). On the device:
#   END=185 bash .dev-s18-decode/call1.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* 2>/dev/null | head -1); [ -n "$cb" ] && ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
s=$(date +%s)
END=${END:-185}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r1; mkdir -p $R /tmp/cubins /tmp/bin
tar -xJf $C/cubins.tar.xz -C /tmp/cubins
for b in attention_bench cuda_check; do gunzip -c $C/$b.gz > /tmp/bin/$b && chmod +x /tmp/bin/$b; done
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tgz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
B=/tmp/bin
# 1. Checks side by side.
ck() { local out=$1; shift; ( timeout $(cap 52) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
ck check-fixtures-4x3eqmsk $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant 4x3eqmsk
ck check-fixtures-4x3eiclmsk $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant 4x3eiclmsk
ck check-gqa-4x3eqmsg $B/cuda_check plans/fixture-gqa.toml --dtypes f16,bf16 --variant 4x3eqmsg
for d in bf16 f16; do
  ck check-llama-$d-4x3eqmsk $B/cuda_check --upstream $L --kv-heads 8 --dtypes $d --variant 4x3eqmsk
  ck check-vicuna-$d-4x3eiclmsk $B/cuda_check --upstream $V --kv-heads 32 --dtypes $d --variant 4x3eiclmsk
done
ck check-llama-bf16-4x3eqmsg $B/cuda_check --upstream $L --kv-heads 8 --dtypes bf16 --variant 4x3eqmsg
( for tool in memcheck racecheck; do echo "== $tool"; timeout $(cap 26) compute-sanitizer --tool $tool $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 --variant 4x3eqmsk 2>&1 | tail -6; done > $R/sanitizer-4x3eqmsk.txt 2>&1 ) &
wait
for f in $R/check-*.txt; do echo "== $f"; grep -E "pass|FAIL|fail|error|rc=" $f | tail -3; done
grep -E "SUMMARY|==" $R/sanitizer-*.txt
pack checks
# 2. Every layer, in blocks: A, B, A, B per model (and g on Llama 4k between).
T="--batch 16,4 --prompt 4096,16384 --no-dense --replays 7 --producer --launch pdl"
run() { local tag=$1 model=$2 v=$3; shift 3
  timeout $(cap 20) $B/attention_bench --model $model $T --variants $v "$@" --json $R/$tag.jsonl > $R/$tag.md 2> $R/$tag.err
  echo "$tag rc=$? t=$(el)"; }
run llama-A1 llama-3-8b:8:$L 4x3eqms
run llama-B1 llama-3-8b:8:$L 4x3eqmsk
run vicuna-A1 vicuna-7b:32:$V 4x3eiclms
run vicuna-B1 vicuna-7b:32:$V 4x3eiclmsk
pack block1
run llama-A2 llama-3-8b:8:$L 4x3eqms
run llama-B2 llama-3-8b:8:$L 4x3eqmsk
run vicuna-A2 vicuna-7b:32:$V 4x3eiclms
run vicuna-B2 vicuna-7b:32:$V 4x3eiclmsk
pack block2
cat $R/llama-A1.jsonl $R/llama-B1.jsonl $R/vicuna-A1.jsonl $R/vicuna-B1.jsonl > $R/bench.jsonl
# 3. Peers: SDPA dense after the same writes (every configuration), a copy / sum of the
#    bytes of the cells near or under a target.
python3 -c "
import json,sys
keep={('llama-3-8b',16,4096):{19,23,25,27,29},('llama-3-8b',4,16384):{0,1,3,4,7,12,19,21,23,24,25,26,27,28,29,31},('vicuna-7b',4,4096):{2,3,4,18,22,23,24,25,26,29},('vicuna-7b',4,16384):{27}}
for l in open('$R/bench.jsonl'):
    r=json.loads(l)
    if r['variant'] in ('4x3eqms','4x3eiclms') and r['layer'] in keep.get((r['model'],r['batch'],r['prompt']),()): sys.stdout.write(l)
" > $R/same-cells.jsonl
timeout $(cap 40) python3 $C/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none --producer \
  --replays 7 --same-bytes $R/same-cells.jsonl --same-bytes-batch 16,4 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err
echo "peers rc=$?"; tail -2 $R/peers.err; pack peers
# 4. The probes on the missing cells (same lists, `auto`; variants interleaved per layer).
PB="--no-dense --replays 7 --producer --launch pdl"
timeout $(cap 8) $B/attention_bench --model llama-3-8b:8:$L $PB --batch 16 --prompt 4096 --layers 19,23,25,27,29 \
  --variants 4x3eqmsx,4x3eqmsn,4x3eqmsy,4x3eqms,4x3eqmsk --json $R/probe-llama16.jsonl > $R/probe-llama16.md 2>> $R/probe.err
echo "probe llama16 rc=$? t=$(el)"
timeout $(cap 8) $B/attention_bench --model llama-3-8b:8:$L $PB --batch 4 --prompt 16384 --layers 1,4,7,25,27,29 \
  --variants 4x3eqmsx,4x3eqmsn,4x3eqmsy,4x3eqms,4x3eqmsk --json $R/probe-llama4.jsonl > $R/probe-llama4.md 2>> $R/probe.err
echo "probe llama4 rc=$? t=$(el)"
timeout $(cap 8) $B/attention_bench --model vicuna-7b:32:$V $PB --batch 4 --prompt 4096 --layers 3,18,22,26 \
  --variants 4x3eiclmsx,4x3eiclmsn,4x3eiclmsy,4x3eiclms,4x3eiclmsk --json $R/probe-vicuna4.jsonl > $R/probe-vicuna4.md 2>> $R/probe.err
echo "probe vicuna4 rc=$? t=$(el)"
timeout $(cap 6) $B/attention_bench --model llama-3-8b:8:$L $PB --batch 4 --prompt 16384 --layers 27,29 \
  --variants 4x3eqms,4x3eqmsb,4x3eqmsk,4x3eqmskb --json $R/probe-wide.jsonl > $R/probe-wide.md 2>> $R/probe.err
echo "probe wide rc=$? t=$(el)"
cat $R/probe-llama16.jsonl $R/probe-llama4.jsonl $R/probe-vicuna4.jsonl > $R/probes.jsonl
pack probes
# 5. g on Llama 4k in blocks (cluster lists at B = 16 and B = 4), against the default.
T="--batch 16,4 --prompt 4096 --no-dense --replays 7 --producer --launch pdl"
run llama4k-A1 llama-3-8b:8:$L 4x3eqms
run llama4k-G1 llama-3-8b:8:$L 4x3eqmsg
run llama4k-A2 llama-3-8b:8:$L 4x3eqms
run llama4k-G2 llama-3-8b:8:$L 4x3eqmsg
pack done
