#!/usr/bin/env bash
# Round 24: the plan pipeline's numeric flags at their edges (densities, bands, time
# limits, MIP gaps, Pareto intervals) on the profile of a tiny model, and the user's own
# calibration JSONL (CRLF, BOM, blank lines, empty, non-UTF-8, a cut last line).
# usage: MOA=path/to/moa edges.sh MODEL WORK   (WORK: a finished `moa pipeline` work folder
#        of MODEL at --profile-lengths 256)
set -u
MOA=${MOA:-moa}
M=$1; W=$2
P=$W/profiles/influence_256.safetensors
T=$(mktemp -d)
r() { echo "[$*]"; timeout 300 "$MOA" "$@" > "$T/out" 2>&1; echo "exit $?: $(grep -vE '^\s*$' "$T/out" | tail -3 | cut -c1-400 | tr '\n' '|')"; }
echo "== moa optimize --density / --band"
for d in 0 1 1.5 nan inf -0.5 1e-300 0.999999 0.5; do r optimize --profile "$P" --density "$d" -o "$T/o"; done
for b in 0.4,0.5 0.5,0.4 0,0 0,1 1,1 nan,0.5 0.5 0.45,0.5,0.6 " 0.4 , 0.5 "; do r optimize --profile "$P" --band "$b" -o "$T/o"; done
echo "== --time-limit / --mip-gap / --pareto-intervals / --max-rules-per-layer"
for t in 0 -1 nan inf 1e-9 1e12 0.001; do r optimize --profile "$P" --density 0.5 --time-limit "$t" -o "$T/o"; done
for g in 0 -0.1 1 2 nan inf 1e-12; do r optimize --profile "$P" --density 0.5 --mip-gap "$g" -o "$T/o"; done
for k in 0 1 100000 4294967296; do r optimize --profile "$P" --density 0.5 --pareto-intervals "$k" -o "$T/o"; done
for k in 0 1 1000; do r optimize --profile "$P" --density 0.5 --max-rules-per-layer "$k" -o "$T/o"; done
echo "== moa pipeline --densities"
for d in 0 1 1.5 nan 0.5,0.5 "" 0.5,; do r pipeline --model "$M" --workdir "$W" --plans-dir "$T/plans" --profile-lengths 256 --samples 1 --validate-length 320 --validate-samples 1 --densities "$d" --source generated; done
for t in 0 nan -5; do r pipeline --model "$M" --workdir "$W" --plans-dir "$T/plans" --profile-lengths 256 --samples 1 --validate-length 320 --validate-samples 1 --densities 0.5 --time-limit "$t" --source generated; done
echo "== the user's own calibration JSONL for moa profile"
C=$W/calib.jsonl
python3 - "$C" "$T" <<'PY'
import sys, os
src, t = sys.argv[1], sys.argv[2]
b = open(src, "rb").read()
w = lambda n, x: open(os.path.join(t, n), "wb").write(x)
w("crlf.jsonl", b.replace(b"\n", b"\r\n"))
w("bom.jsonl", b"\xef\xbb\xbf" + b)
w("blank.jsonl", b"\n\n" + b.replace(b"\n", b"\n\n") + b"\n  \n")
w("noeol.jsonl", b.rstrip(b"\n"))
w("empty.jsonl", b"")
w("latin1.jsonl", b.rstrip(b"\n") + b"\n{\"id\": \"caf\xe9\"}\n")
w("cut.jsonl", b + b[: len(b) // 2])
w("utf16.jsonl", b"\xff\xfe" + b.decode().encode("utf-16-le"))
PY
for f in crlf bom blank noeol empty latin1 cut utf16; do
  r profile --model "$M" --calib "$T/$f.jsonl" --lengths 256 -o "$T/prof-$f" --quiet
done
rm -rf "$T"
