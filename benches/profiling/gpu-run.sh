#!/bin/bash
# Issue 9 (items 2-4): calibration answers and influence profiles on the GPU (candle, the
# `cuda` feature: scripts/build-cuda-profiler.sh), plans from them, and `moa eval` of the
# new plans against dense, the uniform windows and the current default plans; the
# baselines run through wgpu while candle has the GPU for calibration and profiling.
#
# Run from the repository root. Environment:
#   M        moa binary built with the `cuda` feature (required)
#   W, O     work folder and output folder (required)
#   DEV      cuda (default) or cpu (a dry run of the whole script here, at tiny lengths)
#   LENS     profile lengths (default "2048 4096 8192"); SAMPLES per length (default 6;
#            SAMPLES_<N> for length N)
#   EVAL_LENGTHS (default 1024,2048,4096), DEPTHS (default 8), EVAL_EXTRA (extra eval flags)
#   DEADLINE seconds for the whole script (default 230); RESERVE of them kept for the plans
#            and their eval (default 75). A length whose calibration or profile does not
#            fit is dropped with the longer ones (a profile cut short is averaged over the
#            samples it finished); the plans use the lengths that made it.
# The device call that ran it is in benches/RESULTS.md, "moa eval".
set -u
M=${M:?moa binary}; W=${W:?work folder}; O=${O:?output folder}
DEV=${DEV:-cuda}; LENS=${LENS:-"2048 4096 8192"}; SAMPLES=${SAMPLES:-6}
EL=${EVAL_LENGTHS:-1024,2048,4096}; DEPTHS=${DEPTHS:-8}; EXTRA=${EVAL_EXTRA:-}
mkdir -p "$W/profiles" "$O/heatmaps"
t0=$(date +%s)
el() { echo "[$(($(date +%s) - t0)) s] $*"; }
# Seconds a stage may take: what is left before the reserve, at most $1.
budget() {
    local left=$((${DEADLINE:-230} - ${RESERVE:-75} - ($(date +%s) - t0)))
    [ "$left" -lt "$1" ] && echo "$left" || echo "$1"
}
cp plans/smollm2-135m-moa-50.toml "$W/old-moa-50.toml"
cp plans/smollm2-135m-moa-25.toml "$W/old-moa-25.toml"
# shellcheck disable=SC2086
E="--lengths $EL --depths $DEPTHS --seed 0 --quiet $EXTRA"

# 1. wgpu: dense, the uniform 50% and 25% windows and the current defaults.
# shellcheck disable=SC2086
(timeout "${EVAL_A_TIMEOUT:-170}" $M eval $E --plan "$W/old-moa-50.toml" \
    --plan "$W/old-moa-25.toml" --json "$W/eval_a.json" >"$O/eval_a.md" 2>"$O/eval_a.log"
el "eval A done (exit $?)") &
EA=$!

# 2. Dense answers on the GPU, one length at a time (a sample's seed depends only on the
#    seed, its length and its index, so splitting the lengths changes no sample).
: >"$W/calib.jsonl"
for n in $LENS; do
    s=$(eval echo "\${SAMPLES_$n:-$SAMPLES}")
    b=$(budget 60)
    [ "$b" -gt 5 ] || { el "no time left for calib $n"; break; }
    if timeout "$b" "$M" calib --device "$DEV" --out "$W/calib_$n.jsonl" \
        --lengths "$n" --samples "$s" --seed 0 >"$O/calib_$n.txt" 2>"$O/calib_$n.log"; then
        cat "$W/calib_$n.jsonl" >>"$W/calib.jsonl"
        el "calib $n done"
    else
        el "calib $n failed or timed out"
        break
    fi
done

# 3. Influence profiles (tiles and signed cuts), one length at a time.
P=()
LAST=
for n in $LENS; do
    [ -f "$W/calib_$n.jsonl" ] || break
    b=$(budget 120)
    [ "$b" -gt 5 ] || { el "no time left for profile $n"; break; }
    if ! timeout "$b" "$M" profile --device "$DEV" --calib "$W/calib.jsonl" \
        --lengths "$n" -o "$W/profiles" --quiet >"$O/profile_$n.log" 2>&1; then
        # Samples are profiled in order and stored as they finish: average those.
        k=$(find "$W/profiles/samples/$n" -name '*.safetensors' 2>/dev/null | wc -l)
        el "profile $n cut short after $k samples"
        [ "$k" -ge 1 ] && "$M" profile --device cpu --calib "$W/calib.jsonl" --lengths "$n" \
            --max-samples "$k" -o "$W/profiles" --quiet >>"$O/profile_$n.log" 2>&1 || break
    fi
    P+=(--profile "$W/profiles/influence_$n.safetensors")
    LAST=$n
    el "profile $n done"
done
cp "$W"/profiles/*.tsv "$O/" 2>/dev/null

# 4. Plans: β-only rules (--max-alpha 0), signed cut influence, the loss at the longest
#    profiled length minimised, the density band at every profiled length and at 1k.
if [ -n "$LAST" ]; then
    for d in 50 25; do
        "$M" optimize "${P[@]}" --density "0.$d" --gqa-native --max-alpha 0 \
            --objective-length "$LAST" --extra-length 1024 \
            --plan-shape plans/smollm2-135m-moa-50.toml -o "$W/opt$d" >"$O/optimize-$d.log" 2>&1
        cp "$W/opt$d/summary.txt" "$O/optimize-$d.txt"
        cp "$W/opt$d/plan_0.toml" "$O/gpu-moa-$d.toml"
    done
    el "optimized from ${P[*]}"
fi

# 5. The new plans, merged into the baselines' report (or beside dense alone when the
#    baselines did not finish).
wait $EA
cp "$W/eval_a.json" "$O/" 2>/dev/null
left=$((${DEADLINE:-230} - ($(date +%s) - t0)))
if [ -f "$O/gpu-moa-50.toml" ] && [ "$left" -gt 10 ]; then
    merge=(--no-uniform)
    [ -f "$W/eval_a.json" ] && merge+=(--merge "$W/eval_a.json")
    # shellcheck disable=SC2086
    timeout "$left" $M eval $E "${merge[@]}" --plan "$O/gpu-moa-50.toml" \
        --plan "$O/gpu-moa-25.toml" --json "$O/eval.json" --markdown "$O/eval.md" \
        --heatmaps "$O/heatmaps" 2>"$O/eval_b.log"
    el "eval B done (exit $?)"
    cat "$O/eval.md"
else
    cat "$O/eval_a.md"
fi
