#!/bin/bash
# cmp.sh FILE TAG [extra args]: moa generate with MOA_WGPU_QUANT_WEIGHTS=0 and 1, the same arguments;
# prints the load line's weight bytes, peak RSS and whether the ids match.
B=${MOA:-/work/s59-user-target/release/moa}
F=$1; T=$2; shift 2
for q in 0 1; do
  MOA_WGPU_QUANT_WEIGHTS=$q /usr/bin/time -v $B generate --model $F "$@" --print-ids > $T-$q.out 2> $T-$q.err
  echo "Q=$q rc=$? $(grep -o 'loaded in [^)]*)' $T-$q.err) rss=$(grep 'Maximum resident' $T-$q.err | awk '{print $NF}') KB; $(grep -E '^prefill' $T-$q.err)"
done
if diff <(grep '^ids' $T-0.err) <(grep '^ids' $T-1.err) >/dev/null && diff $T-0.out $T-1.out >/dev/null; then echo "$T: same ids and text"; else echo "$T: DIFFER"; diff <(grep '^ids' $T-0.err) <(grep '^ids' $T-1.err) | head -20; fi
