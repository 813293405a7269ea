#!/bin/bash
# Journey A2: every MOA_* setting at each value it takes that is not its default, one at a
# time, under `moa generate` on lavapipe (default model, greedy, 12 new tokens): does the
# run end, and with the default's answer (diagnostics marked "wrong results" excepted)?
BIN=${1:?bin dir}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-s56}
run() { timeout 300 "$BIN/moa" generate --prompt "What is 2+2?" --max-new-tokens 12 "$@" 2>&1; }
ref=$(run | grep -v '^moa:\|^prefill\|^KV cache')
echo "default answer: $ref"
while read -r v vals; do
  for val in $vals; do
    start=$(date +%s.%N)
    out=$(env "$v=$val" bash -c "$(declare -f run); BIN=$BIN run")
    rc=$?
    t=$(echo "$(date +%s.%N) - $start" | bc)
    ans=$(echo "$out" | grep -v '^moa:\|^prefill\|^KV cache')
    same=$([ "$ans" = "$ref" ] && echo same || echo DIFFERS)
    warn=$(echo "$out" | grep -i 'warn\|ignored\|refus\|not used\|no effect' | head -2 | tr '\n' ' ' | cut -c1-300)
    printf '%s=%s rc=%s %.1fs %s | %s | %s\n' "$v" "$val" "$rc" "$t" "$same" "$(echo "$ans" | tr '\n' ' ' | cut -c1-200)" "$warn"
  done
done <<'LIST'
MOA_WGPU_COOP 0
MOA_WGPU_SUBGROUPS 0
MOA_WGSL_DECODE coop
MOA_WGSL_RESCALE 0 15
MOA_WGPU_SPLIT_K 1 0
MOA_WGPU_TILED 1
MOA_WGPU_TILED_BLOCK 8
MOA_WGPU_MATVEC tree
MOA_WGPU_SG_KSPLIT 8
MOA_WGPU_SG_ROWS 4
MOA_WGPU_SG_UNROLL 4
MOA_WGPU_SG_XFIRST 1
MOA_WGPU_SG_FIT 1
MOA_WGPU_SG_EARLY 0
MOA_WGPU_ROW_BLOCK 16
MOA_WGPU_ARGMAX2 0
MOA_WGPU_PREENCODE 0
MOA_WGPU_AHEAD 0
MOA_WGPU_FEED_IN_PLACE 1
MOA_WGPU_SWIGLU_OUT 0
MOA_WGPU_DECODE_FUSED_MLP 1
MOA_WGPU_COOP_ATTN 0
MOA_WGPU_COOP_ATTN_DIAG 3
MOA_WGPU_WARM 0
MOA_WGPU_TEXTURE_WEIGHTS 0 1
MOA_WGPU_STATS 1
MOA_WGPU_COOP_HEAD direct
MOA_WGPU_COOP_DECODE 1
MOA_WGPU_COOP_QKV 1
MOA_WGSL_FUSED_MERGE 0 1
MOA_WGSL_V_FIRST 1
MOA_WGSL_SG_DECODE 0 read
MOA_WGSL_SG_PIPE 2
MOA_WGSL_SG_FLAT 0 1
MOA_WGSL_SG_FLAT_SUBGROUPS 2
MOA_WGSL_SG_FLAT_QK h16-reload
MOA_WGSL_SG_FLAT_WORDS 0
MOA_WGSL_SG_FLAT_CMAX 0
MOA_WGSL_SG_FLAT_NL 1 8
MOA_WGSL_SG_FLAT_QPACK 1
MOA_WGSL_RULES_TABLE 0
MOA_WGPU_UNCHECKED 0
MOA_WGPU_ROPE_TOKENS 1
MOA_WGPU_DECODE_CHUNK 1 65536
MOA_WGPU_DECODE_RESIDENT 1 65536
MOA_WGPU_SG_DIAG 1
LIST
