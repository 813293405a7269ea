#!/bin/bash
# Device call 1 (session 17, branch s17-decode): the cluster merge's exit, one opt-in letter
# against the defaults (GQA 4x3eqms, MHA 4x3eiclms), checked and timed in one call, with
# an A/A repeat.
#   o  exit arrive first: a block of a cluster launch computes its share of O into
#      registers, arrives at the exit barrier (release: no global store pending, so its
#      MEMBAR.ALL.GPU has nothing to wait for), then stores O and waits; the default stores
#      O first, so the arrive's fence waits for the O stores' acknowledgements (one L2 write
#      round trip at every cluster's end, on the launch's critical path).
# Predicted (before the call): o −0.2 to −0.5 µs per launch on cluster lists (Llama-3-8B
# B = 16 4k on 26 layers incl. 25/27/29, B = 4 4k every layer, B = 16 16k pairs; Vicuna-7B
# pairs), 0 (± noise) on plain lists (most B = 4 16k and Vicuna lists). Llama B = 16 4k
# layer 25 (needs 0.54 µs) may pass, 27 (0.81) and 29 (1.58) not.
#  1. Checks side by side: cuda_check of the fixtures (f32, f16, bf16) with 4x3eqmso and
#     4x3eiclmso, Llama-3-8B bf16 and f16 with 4x3eqmso, Vicuna-7B bf16 and f16 with
#     4x3eiclmso; compute-sanitizer memcheck and racecheck on fixture-gqa bf16 with 4x3eqmso.
#  2. Timing alone, in the model's position (producer + programmatic launch): every layer,
#     B = 16 and 4, 4k and 16k: Llama-3-8B 4x3eqms / 4x3eqmso, Vicuna-7B 4x3eiclms /
#     4x3eiclmso; dense SDPA after the same writes and, at B = 4, a device copy of each
#     layer's bytes (decode_peers.py --same-bytes); both models again in the reverse order
#     (A/B and A/A).
#  3. Probes that split the time of the missing cells (same work lists, `auto`): z = the
#     stream only, x = stream + math (no epilogue), on Llama-3-8B B = 16 4k layers 19, 23
#     (passing, plain lists) and 25, 27, 29 (missing, clusters of 4), B = 4 16k layers 4,
#     7, 25, 27 (missing, plain); Vicuna-7B B = 4 4k layers 3, 18, 22, 26 (missing, plain).
#     Predicted: z within 1 µs of a device copy of the same bytes on every one, x − z
#     1–3 µs, full − x ≈ 2 µs (session 12's y − x), `o` taking 0.2–0.5 of it on clusters.
#     The same-bytes pass (copy, sum, SDPA over each layer's bytes) takes only these cells
#     (B = 16 too: the B = 16 cells had no copy so far).
# Carry .dev-s17-decode (benches/decode-h200/s16/pack.sh). On the device:
#   END=185 bash .dev-s17-decode/call1.sh
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
ck() { local out=$1; shift; ( timeout $(cap 48) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
ck check-fixtures-4x3eqmso $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant 4x3eqmso
ck check-fixtures-4x3eiclmso $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant 4x3eiclmso
for d in bf16 f16; do
  ck check-llama-$d-4x3eqmso $B/cuda_check --upstream $L --kv-heads 8 --dtypes $d --variant 4x3eqmso
  ck check-vicuna-$d-4x3eiclmso $B/cuda_check --upstream $V --kv-heads 32 --dtypes $d --variant 4x3eiclmso
done
( for tool in memcheck racecheck; do echo "== $tool"; timeout $(cap 24) compute-sanitizer --tool $tool $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 --variant 4x3eqmso 2>&1 | tail -6; done > $R/sanitizer-4x3eqmso.txt 2>&1 ) &
wait
for f in $R/check-*.txt; do echo "== $f"; grep -E "pass|FAIL|fail|error|rc=" $f | tail -3; done
grep -E "SUMMARY|==" $R/sanitizer-*.txt
pack checks
T="--batch 16,4 --prompt 4096,16384 --no-dense --replays 7 --producer --launch pdl"
timeout $(cap 18) $B/attention_bench --model llama-3-8b:8:$L $T --variants 4x3eqms,4x3eqmso \
  --json $R/bench-llama.jsonl > $R/bench-llama.md 2> $R/bench-llama.err
echo "bench llama rc=$?"; tail -2 $R/bench-llama.err; pack bench-llama
timeout $(cap 18) $B/attention_bench --model vicuna-7b:32:$V $T --variants 4x3eiclms,4x3eiclmso \
  --json $R/bench-vicuna.jsonl > $R/bench-vicuna.md 2> $R/bench-vicuna.err
echo "bench vicuna rc=$?"; tail -2 $R/bench-vicuna.err; pack bench-vicuna
cat $R/bench-llama.jsonl $R/bench-vicuna.jsonl > $R/bench.jsonl
PB="--no-dense --replays 7 --producer --launch pdl"
timeout $(cap 10) $B/attention_bench --model llama-3-8b:8:$L $PB --batch 16 --prompt 4096 --layers 19,23,25,27,29 \
  --variants 4x3eqmsz,4x3eqmsx,4x3eqms,4x3eqmso --json $R/probe-llama16.jsonl > $R/probe-llama16.md 2> $R/probe-llama16.err
echo "probe llama16 rc=$?"
timeout $(cap 10) $B/attention_bench --model llama-3-8b:8:$L $PB --batch 4 --prompt 16384 --layers 4,7,25,27 \
  --variants 4x3eqmsz,4x3eqmsx,4x3eqms --json $R/probe-llama4.jsonl > $R/probe-llama4.md 2> $R/probe-llama4.err
echo "probe llama4 rc=$?"
timeout $(cap 10) $B/attention_bench --model vicuna-7b:32:$V $PB --batch 4 --prompt 4096 --layers 3,18,22,26 \
  --variants 4x3eiclmsz,4x3eiclmsx,4x3eiclms --json $R/probe-vicuna4.jsonl > $R/probe-vicuna4.md 2> $R/probe-vicuna4.err
echo "probe vicuna4 rc=$?"; pack probes
# The same-bytes pass on the probed cells only (it was cut at 19-28 layers per prompt in session 16).
python3 -c "
import json,sys
keep={('llama-3-8b',16,4096):{19,23,25,27,29},('llama-3-8b',4,16384):{0,1,4,7,12,19,23,25,27,28,29},('vicuna-7b',4,4096):{3,18,22,26,2,23}}
for l in open('$R/bench.jsonl'):
    r=json.loads(l)
    if r['layer'] in keep.get((r['model'],r['batch'],r['prompt']),()): sys.stdout.write(l)
" > $R/same-cells.jsonl
timeout $(cap 40) python3 $C/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none --producer \
  --replays 7 --same-bytes $R/same-cells.jsonl --same-bytes-batch 16,4 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err
echo "peers rc=$?"; tail -2 $R/peers.err; pack peers
timeout $(cap 18) $B/attention_bench --model llama-3-8b:8:$L $T --variants 4x3eqmso,4x3eqms \
  --json $R/repeat-llama.jsonl > $R/repeat-llama.md 2> $R/repeat-llama.err
echo "repeat llama rc=$?"; tail -2 $R/repeat-llama.err; pack repeat-llama
timeout $(cap 18) $B/attention_bench --model vicuna-7b:32:$V $T --variants 4x3eiclmso,4x3eiclms \
  --json $R/repeat-vicuna.jsonl > $R/repeat-vicuna.md 2> $R/repeat-vicuna.err
echo "repeat vicuna rc=$?"; tail -2 $R/repeat-vicuna.err
pack done
