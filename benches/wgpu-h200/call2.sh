#!/bin/bash
# Device call 2 of 2 (s6-wgpu), right after call 1 on the warm machine: the GGUF put
# together, then `moa generate` 16 rows x 3974 tokens (prefill + 64 decode steps), the
# 50% plan and dense, matrix-unit products (default) and tiled (MOA_WGPU_COOP=0), with
# MOA_WGPU_STATS=1 (dispatches per step, host encode time); one row at 4k; then HF.
B=$PWD/.dev-s6-wgpu-b; W=/tmp/s6w
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
exec > >(tee $OUT/call2.txt) 2>&1
[ -x $W/moa ] || { echo "no $W/moa: call 1 did not run on this machine"; exit 3; }
for f in $W/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json MOA_CACHE=/tmp/moa-cache MOA_WGPU_STATS=1
mkdir -p $MOA_CACHE; G=$MOA_CACHE/SmolLM2-135M-Instruct.Q4_1.gguf
cat $W/part1 $B/part2 > $G; [ "$(sha256sum $G | cut -c1-64)" = "$(cat $B/gguf.sha256)" ] && el "gguf ok" || el "gguf sha MISMATCH"
python3 - <<'PY'
import random
words = ("the of and to in is was that for on with as by at from his her their this which an be are "
         "were had have not but all they one there been so can more if no out some would what when who "
         "will up about into than them could time only other new its over such also after these two may "
         "first any our how most very").split()
rng = random.Random(1)
s = [" ".join(rng.choice(words) for _ in range(12)).capitalize() + "." for _ in range(3650 // 12)]
open("/tmp/4k.txt", "w").write(" ".join(s) + "\nThe pass key is 12345. Remember it.\n")
PY
M=$W/moa; R16=(); for i in $(seq 16); do R16+=(--prompt-file /tmp/4k.txt); done
run() { el "== $*"; timeout 45 "$@" 2>&1 >/tmp/gen.out | grep -E "^moa:|^prefill|^decode|^KV|rror" ; }
el chat; timeout 30 $M generate --prompt "What is 2+2?" --max-new-tokens 24 2>&1 | grep -v XDG
[ "${PIPESTATUS[0]}" = 0 ] || { export MOA_WGPU_COOP=0; el "chat failed: MOA_WGPU_COOP=0 from here"; }
run $M generate --raw --max-new-tokens 64 --ignore-eos "${R16[@]}"
run $M generate --raw --max-new-tokens 64 --ignore-eos --dense "${R16[@]}"
run env MOA_WGPU_COOP=0 $M generate --raw --max-new-tokens 64 --ignore-eos "${R16[@]}"
run env MOA_WGPU_COOP=0 $M generate --raw --max-new-tokens 64 --ignore-eos --dense "${R16[@]}"
run $M generate --raw --max-new-tokens 64 --ignore-eos --prompt-file /tmp/4k.txt
left=$(( 165 - ($(date +%s) - s) )); el "hf (timeout $left s)"
PYTHONUNBUFFERED=1 timeout $left python3 $W/hf_decode.py --like smollm2-135m --prompt 3974 --batch 16 --new 64 2>/tmp/hf.err
grep -i -E "error|Traceback" /tmp/hf.err | head -3; el done
