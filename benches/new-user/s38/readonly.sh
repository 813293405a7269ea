#!/usr/bin/env bash
# Round 24: moa as an unprivileged user (nobody, 65534) beside root-owned read-only
# folders: outputs and caches that cannot be written, a read-only kernel folder,
# HOME / XDG cache unset or unwritable.
# usage: readonly.sh BIN_DIR SCRATCH   (SCRATCH/ro: root-owned, mode 755, holding model/,
#        plan.toml and kernels/ compiled from it; SCRATCH/nb: owned by nobody)
set -u
B=$1; S=$2
RO=$S/ro; NB=$S/nb
rm -rf "$NB"; mkdir -p "$NB"; chown 65534:65534 "$NB"
X=$(mktemp -d); chown 65534:65534 "$X"
# r ENV=... CMD ARGS: run as nobody with only PATH, XDG_RUNTIME_DIR and the given variables
r() { echo "[$*]"; (cd "$NB" && timeout 300 setpriv --reuid=65534 --regid=65534 --clear-groups env -i PATH=/usr/bin:/bin XDG_RUNTIME_DIR="$X" "$@") > "$S/run.out" 2>&1; echo "exit $?: $(grep -vE '^\s*$' "$S/run.out" | tail -4 | tr '\n' '|')"; }
M=$RO/model; P=$RO/plan.toml; K=$RO/kernels
echo "== outputs in a folder nobody cannot write"
r HOME=/nonexistent "$B/moa-compile" "$P" -o "$RO/out" --target wgsl
r HOME=/nonexistent "$B/moa-compile" "$P" -o "$K" --target wgsl
r HOME=/nonexistent "$B/moa-compile" "$P" -o "$K" --target wgsl --check
r HOME=/nonexistent "$B/moa" model random --like smollm2-135m -o "$RO/rand"
r HOME=/nonexistent "$B/moa" plan export "$P" -o "$RO/p.json"
r HOME=/nonexistent "$B/moa" calib --model "$M" --out "$RO/c.jsonl" --lengths 256 --samples 1 --source generated
r HOME=/nonexistent "$B/moa" pipeline --model "$M" --workdir "$RO/work" --profile-lengths 256 --samples 1 --validate-length 320 --validate-samples 1 --densities 0.5 --source generated
r HOME=/nonexistent "$B/moa" pipeline --model "$M" --workdir "$NB/work" --plans-dir "$RO/plans" --profile-lengths 256 --samples 1 --validate-length 320 --validate-samples 1 --densities 0.5 --source generated
r HOME=/nonexistent "$B/moa" eval --backend cpu --model "$M" --plan "$P" --lengths 240 --depths 1 --ppl-rows 1 --ppl-length 64 --ppl-scored 8 --quiet --json "$RO/e.json"
r HOME=/nonexistent "$B/moa" eval --backend cpu --model "$M" --plan "$P" --lengths 240 --depths 1 --ppl-rows 1 --ppl-length 64 --ppl-scored 8 --quiet --heatmaps "$RO/h"
r HOME=/nonexistent "$B/moa" profile --help
echo "== a read-only kernel folder, read-only model and plan"
r HOME=/nonexistent "$B/moa" generate --model "$M" --plan "$P" --kernels "$K" --prompt hi --max-new-tokens 4 --print-ids
r HOME=/nonexistent "$B/moa" generate --model "$M" --plan "$P" --prompt hi --max-new-tokens 4 --print-ids
r HOME=/nonexistent "$B/moa" eval --backend cpu --model "$M" --plan "$P" --lengths 240 --depths 1 --ppl-rows 1 --ppl-length 64 --ppl-scored 8 --quiet
echo "== the model cache: HOME unset, unwritable, XDG_CACHE_HOME unwritable, MOA_CACHE unwritable"
r "$B/moa" model fetch
r HOME=/nonexistent "$B/moa" model fetch
r HOME="$RO" "$B/moa" model fetch
r HOME="$NB" XDG_CACHE_HOME="$RO" "$B/moa" model fetch
r HOME="$NB" MOA_CACHE="$RO/cache" "$B/moa" model fetch
r HOME=/nonexistent "$B/moa" generate --prompt hi --max-new-tokens 2
r "$B/moa" model info
echo "== unreadable inputs"
cp -r "$M" "$S/m000"; chmod 000 "$S/m000/model.safetensors"
r HOME=/nonexistent "$B/moa" model info "$S/m000"
r HOME=/nonexistent "$B/moa" generate --model "$S/m000" --dense --prompt hi --max-new-tokens 2
cp "$P" "$S/p000.toml"; chmod 000 "$S/p000.toml"
r HOME=/nonexistent "$B/moa-compile" "$S/p000.toml" -o "$NB/k"
cp -r "$K" "$S/k000"; chmod 000 "$S/k000/manifest.json"
r HOME=/nonexistent "$B/moa" generate --model "$M" --plan "$P" --kernels "$S/k000" --prompt hi --max-new-tokens 2
chmod 711 "$S/k000"; chmod 644 "$S/k000/manifest.json"
r HOME=/nonexistent "$B/moa" generate --model "$M" --plan "$P" --kernels "$S/k000" --prompt hi --max-new-tokens 2 --print-ids
echo "== the work folder of a pipeline made by root, rerun by nobody"
rm -rf "$S/w-root"; cp -r "$S/work1" "$S/w-root"; chmod -R a+rX "$S/w-root"
r HOME=/nonexistent "$B/moa" pipeline --model "$M" --workdir "$S/w-root" --plans-dir "$NB/plans" --profile-lengths 256 --samples 1 --validate-length 320 --validate-samples 1 --densities 0.5 --source generated
r HOME=/nonexistent "$B/moa" pipeline --model "$M" --workdir "$S/w-root" --plans-dir "$NB/plans" --profile-lengths 256 --samples 1 --validate-length 320 --validate-samples 1 --densities 0.5,0.25 --source generated
ls -la "$NB" "$RO"
