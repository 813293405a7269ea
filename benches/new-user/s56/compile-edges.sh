#!/bin/bash
# Journey B: moa-compile's WGSL prefill flags at their edges on odd shapes (head_dim 256,
# 252 and 4, a GQA group of 64), the folder run through `moa generate --kernels` and
# compared with the engine's own compile (--print-ids), on lavapipe.
# Usage: compile-edges.sh BIN_DIR WORK  (WORK made by compile-edges-setup.sh: models/<shape>
# from `moa model random`, <shape>.toml plans and prompt600.txt). The log: SHAPES="hd4 g64
# hd252 hd256" DTYPES=f16 QS="1 256" (a full grid of both dtypes and three tiles is 48 runs
# of up to a minute on 2 cores)
BIN=${1:?bin}; W=${2:?work}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-s56}
for p in ${SHAPES:-hd256 hd252 hd4 g64}; do
  ref=$(timeout 600 "$BIN/moa" generate --model $W/models/$p --plan $W/$p.toml --raw --prompt-file $W/prompt600.txt --max-new-tokens 4 --print-ids 2>&1)
  echo "$p engine's own compile rc=$?: $(echo "$ref" | grep -i 'generated\|error\|cause' | tr '\n' ' ' | cut -c1-300)"
  for dt in ${DTYPES:-f16 f32}; do
    f32=$([ $dt = f32 ] && echo --f32)
    for q in ${QS:-1 32 256}; do for kp in "" --wgsl-prefill-key-pairs; do
      rm -rf $W/k; "$BIN/moa-compile" -q $W/$p.toml -o $W/k --target wgsl --dtype $dt --wgsl-prefill-q-tile $q $kp >/dev/null 2>&1 || { echo "$p $dt q=$q $kp: compile failed"; continue; }
      out=$(timeout 600 "$BIN/moa" generate --model $W/models/$p --plan $W/$p.toml --kernels $W/k $f32 --raw --prompt-file $W/prompt600.txt --max-new-tokens 4 --print-ids 2>&1)
      rc=$?
      echo "$p $dt q=$q $kp rc=$rc: $(echo "$out" | grep -i 'generated\|error\|cause\|panic' | tr '\n' ' ' | cut -c1-300)"
    done; done
  done
done
