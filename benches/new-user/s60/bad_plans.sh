#!/bin/bash
# Broken copies of plans/fixture-gqa.toml through moa-compile (both targets) and moa plan show.
# Usage (from the repository root): bad_plans.sh DIR (scratch); MOA_COMPILE and MOA point at the binaries.
set -u
D=$1; mkdir -p $D; C=${MOA_COMPILE:-moa-compile}; M=${MOA:-moa}
G=${GQA_PLAN:-plans/fixture-gqa.toml}   # run from the repository root, or set GQA_PLAN
mk() { # name, python expression over s (the text)
  python3 - "$G" "$D/$1.toml" "$2" <<'PY'
import sys
s = open(sys.argv[1]).read()
s = eval(sys.argv[3])
open(sys.argv[2], "w").write(s)
PY
}
mk sink-neg        's.replace("sink_tokens = 16", "sink_tokens = -16")'
mk sink-huge       's.replace("sink_tokens = 16", "sink_tokens = 99999999999999999999")'
mk sink-big        's.replace("sink_tokens = 16", "sink_tokens = 4294967296")'
mk sink-0          's.replace("sink_tokens = 16", "sink_tokens = 0")'
mk minspan-0       's.replace("min_span_tokens = 32", "min_span_tokens = 0")'
mk block-0         's.replace("block_tokens = 16", "block_tokens = 0")'
mk block-3         's.replace("block_tokens = 16", "block_tokens = 3")'
mk layers-4        's.replace("layers = 3", "layers = 4")'
mk layers-2        's.replace("layers = 3", "layers = 2")'
mk heads-7         's.replace("q_heads = 8", "q_heads = 7")'
mk kv-3            's.replace("kv_heads = 2", "kv_heads = 3")'
mk kv-0            's.replace("kv_heads = 2", "kv_heads = 0")'
mk alpha-short     's.replace("alpha = [0, 0, 0, 0, 0, 0, 0, 0]", "alpha = [0, 0, 0, 0, 0, 0, 0]")'
mk beta-nan        's.replace("beta = [1.0, 1.0, 1.0", "beta = [nan, 1.0, 1.0")'
mk beta-inf        's.replace("beta = [1.0, 1.0, 1.0", "beta = [inf, 1.0, 1.0")'
mk beta-neg        's.replace("beta = [1.0, 1.0, 1.0", "beta = [-0.5, 1.0, 1.0")'
mk beta-huge       's.replace("beta = [1.0, 1.0, 1.0", "beta = [1e300, 1.0, 1.0")'
mk beta-tiny       's.replace("beta = [1.0, 1.0, 1.0", "beta = [1e-300, 1.0, 1.0")'
mk alpha-huge      's.replace("alpha = [0, 0, 0, 0, 0, 0, 0, 0]", "alpha = [9223372036854775807, 0, 0, 0, 0, 0, 0, 0]")'
mk alpha-float     's.replace("alpha = [0, 0, 0, 0, 0, 0, 0, 0]", "alpha = [0.5, 0, 0, 0, 0, 0, 0, 0]")'
mk alpha-nan       's.replace("alpha = [0, 0, 0, 0, 0, 0, 0, 0]", "alpha = [nan, 0, 0, 0, 0, 0, 0, 0]")'
mk ctx-0           's.replace("max_context_tokens = 1024", "max_context_tokens = 0")'
mk ctx-huge        's.replace("max_context_tokens = 1024", "max_context_tokens = 4294967295")'
mk ctx-2p40        's.replace("max_context_tokens = 1024", "max_context_tokens = 1099511627776")'
mk hd-0            's.replace("head_dim = 64", "head_dim = 0")'
mk hd-huge         's.replace("head_dim = 64", "head_dim = 65536")'
mk hd-3            's.replace("head_dim = 64", "head_dim = 3")'
mk newtok-huge     's.replace("max_new_tokens = 32", "max_new_tokens = 4294967295")'
mk newtok-ctx      's.replace("max_new_tokens = 32", "max_new_tokens = 1024")'
mk mode-x          's.replace("mode = \"moa\"", "mode = \"sliding\"")'
mk fv-2            's.replace("format_version = 1", "format_version = 2")'
mk sink-gt-min     's.replace("sink_tokens = 16", "sink_tokens = 64")'
mk ctx-lt-min      's.replace("max_context_tokens = 1024", "max_context_tokens = 16")'
mk dup-key         's.replace("sink_tokens = 16", "sink_tokens = 16\nsink_tokens = 16")'
mk empty-layers    's[:s.index("[[layers]]")]'
for f in $D/*.toml; do
  n=$(basename $f .toml)
  for t in wgsl cuda; do
    out=$($C $f -o $D/out-$n-$t --target $t -q 2>&1); rc=$?
    echo "== $n --target $t: rc=$rc"; echo "$out" | head -4 | cut -c1-400
  done
  out=$($M plan show $f --prompt-len 100 2>&1); rc=$?
  echo "== $n plan show: rc=$rc"; echo "$out" | head -3 | cut -c1-300
done
