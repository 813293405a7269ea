#!/usr/bin/env bash
# Round 22: outputs onto a full disk: a 96 KiB tmpfs (root can mount one here), first
# empty, then filled to its last 2 KiB. Lists what each refused run left on the disk.
# usage: MOA=... MOA_COMPILE=... fullfs.sh PLAN MODEL FS_MOUNTPOINT
set -u
MOA=${MOA:-moa}; MC=${MOA_COMPILE:-moa-compile}
PLAN=$1; M=$2; FS=$3
left() { echo "    left on the disk: $(cd "$FS" && find . -mindepth 1 ! -name filler | sort | tr '\n' ' ')"; }
clean() { find "$FS" -mindepth 1 ! -name filler -delete 2>/dev/null; }
r() { "$@" > "$FS.out" 2>&1; local c=$?; echo "[$(basename "$1") ${*:2}] exit $c: $(grep -E 'Cause|written|wrote' "$FS.out" | head -3 | tr '\n' '|')"; left; clean; }
for state in empty full; do
    rm -f "$FS/filler"
    if [ $state = full ]; then
        head -c $((94 * 1024)) /dev/zero > "$FS/filler" 2>/dev/null
    fi
    echo "== disk $state: $(df -k "$FS" | tail -1 | awk '{print $4}') KiB free"
    r "$MC" "$PLAN" -o "$FS/kernels"
    r "$MC" "$PLAN" -o "$FS/kernels" --target cuda
    r "$MOA" plan export "$PLAN" -o "$FS/plan.json"
    r "$MOA" plan import tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json --layers 32 --heads 32 --kv-heads 32 --head-dim 128 --max-context 16384 -o "$FS/vicuna.toml"
    r "$MOA" model random --like smollm2-135m -o "$FS/random"
    r "$MOA" calib --model "$M" --out "$FS/c.jsonl" --lengths 300 --samples 3 --source generated --device cpu
    r "$MOA" eval --backend cpu --model "$M" --lengths 240 --depths 1 --ppl-rows 1 --ppl-length 64 --ppl-scored 8 --quiet --json "$FS/e.json" --markdown "$FS/e.md"
done
rm -f "$FS/filler" "$FS.out"
