#!/bin/bash
# Session 36, branch s36-wide, call 2 (the machine still warm after call 1): call 1's HF peer
# runs hit their 70 s caps inside torch.compile, so one shape alone, with 100 s. Run tool
# (carry .dev-s36-wide, as call 1), timeout_s 105:
#   bash .dev-s36-wide/call2.sh
# The call ran as this command inline (the run tool's command line, $OUT/... for the files); no
# new prediction was written for it: call 1's header (step 3) holds the one that applies:
# HF 7-9 ms a step at 4k x 16 (repeat_kv copies each layer's K/V to the 32 query heads), moa
# dense 1.2-1.6x HF's tok/s.
D=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
PYTHONUNBUFFERED=1 timeout 100 python3 "$D/hf_decode.py" --like llama-3-8b --kv-heads 2 --prompt 4096 --batch 16 \
  --new 8 --json "$OUT/hf.jsonl" > "$OUT/hf-kv2.md" 2> "$OUT/hf-kv2.err"
echo rc=$?; cat "$OUT/hf-kv2.md"; grep -v -i warn "$OUT/hf-kv2.err" | tail -3
