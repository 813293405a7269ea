#!/bin/bash
# Issue 9, perplexity (session 6): calibration with `text` samples (running text, the last
# tokens teacher-forced) beside the retrieval ones, profiles on the GPU, plans with and
# without the text term from the same per-sample store, and `moa eval` of them against
# dense, the uniform windows and the current default, with per-token perplexity nats.
#
# Run from the repository root. Environment:
#   M        moa binary built with the `cuda` feature (required)
#   W, O     work folder and output folder (required)
#   PPL      perplexity text files, space separated (required)
#   DEV      cuda (default) or cpu (a dry run here at tiny lengths)
#   LENS     profile lengths (default "2048 4096"); SAMPLES retrieval samples per length
#            (default 6), TEXT text samples per length (default 3), TEXT_SCORED (256)
#   EVAL_LENGTHS (default 1024,2048,4096,7680), DEPTHS (8), PPL_ARGS (default
#            "--ppl-rows 8 --ppl-scored 512 --ppl-length 4096")
#   DEADLINE seconds for the whole script (default 195); EVAL_A_CAP (default 120),
#            CALIB_CAP per length (default 60)
# The device call that ran it is in benches/RESULTS.md, "Perplexity".
set -u
M=${M:?moa binary}; W=${W:?work folder}; O=${O:?output folder}; PPL=${PPL:?text files}
DEV=${DEV:-cuda}; LENS=${LENS:-"2048 4096"}; SAMPLES=${SAMPLES:-6}; TEXT=${TEXT:-3}
TS=${TEXT_SCORED:-256}
EL=${EVAL_LENGTHS:-1024,2048,4096,7680}; DEPTHS=${DEPTHS:-8}
PA=${PPL_ARGS:-"--ppl-rows 8 --ppl-scored 512 --ppl-length 4096"}
DL=${DEADLINE:-195}
mkdir -p "$W/profiles" "$W/profR" "$O/heatmaps"
t0=$(date +%s)
el() { echo "[$(($(date +%s) - t0)) s] $*"; }
left() { echo $((DL - ($(date +%s) - t0))); }
cp plans/smollm2-135m-moa-50.toml "$W/old-moa-50.toml"
PT=()
for f in $PPL; do PT+=(--ppl-text "$f"); done
# shellcheck disable=SC2086
E="--lengths $EL --depths $DEPTHS --seed 0 --quiet $PA"

# 1. wgpu, in the background: dense, the uniform 50% and 25% windows, the current default.
# shellcheck disable=SC2086
(timeout "${EVAL_A_CAP:-120}" $M eval $E "${PT[@]}" --plan "$W/old-moa-50.toml" \
    --json "$W/eval_a.json" >"$O/eval_a.md" 2>"$O/eval_a.log"
el "eval A done (exit $?)") &
EA=$!

# 2. Dense answers (retrieval) and text samples, one length at a time.
: >"$W/calib.jsonl"
for n in $LENS; do
    if timeout "${CALIB_CAP:-60}" "$M" calib --device "$DEV" --out "$W/calib_$n.jsonl" --lengths "$n" \
        --samples "$SAMPLES" --text-samples "$TEXT" --text-scored "$TS" --seed 0 \
        >"$O/calib_$n.txt" 2>"$O/calib_$n.log"; then
        cat "$W/calib_$n.jsonl" >>"$W/calib.jsonl"
        el "calib $n done"
    else
        el "calib $n failed or timed out"; tail -3 "$O/calib_$n.log"
        break
    fi
done

# 3. Profiles of every sample (stored per sample), one length at a time.
P=(); R=(); LAST=
for n in $LENS; do
    [ -f "$W/calib_$n.jsonl" ] || break
    b=$(($(left) - 80)); [ "$b" -gt 90 ] && b=90
    [ "$b" -gt 5 ] || { el "no time left for profile $n"; break; }
    if ! timeout "$b" "$M" profile --device "$DEV" --calib "$W/calib.jsonl" \
        --lengths "$n" -o "$W/profiles" --quiet >"$O/profile_$n.log" 2>&1; then
        k=$(find "$W/profiles/samples/$n" -name '*.safetensors' 2>/dev/null | wc -l)
        el "profile $n cut short after $k samples"; break
    fi
    P+=(--profile "$W/profiles/influence_$n.safetensors")
    R+=(--profile "$W/profR/influence_$n.safetensors")
    LAST=$n
    el "profile $n done"
done
# The same stored samples averaged without the text ones: the objective without the text
# term, for a comparison from one run.
grep -v '"task":"text"' "$W/calib.jsonl" >"$W/calib_ret.jsonl"
ln -sfn "$W/profiles/samples" "$W/profR/samples"
if [ -n "$LAST" ]; then
    ls=$(echo "$LENS" | tr ' ' '\n' | awk -v l="$LAST" '$1 <= l' | paste -sd,)
    "$M" profile --device cpu --calib "$W/calib_ret.jsonl" --lengths "$ls" -o "$W/profR" \
        --quiet >"$O/profile_ret.log" 2>&1 || el "retrieval-only average failed"
fi
cp "$W"/profiles/*.tsv "$O/" 2>/dev/null
mkdir -p "$O/prof"; cp "$W"/profiles/influence_*.safetensors "$O/prof/" 2>/dev/null

# 4. Plans: β-only rules, signed cut influence, the loss at the longest profiled length,
#    the density band at the profiled lengths, 1k and 8k.
opt() { # name, density, then the --profile flags
    local name=$1 d=$2; shift 2
    "$M" optimize "$@" --density "$d" --gqa-native --max-alpha 0 --objective-length "$LAST" \
        --extra-length 1024 --extra-length 8192 --plan-shape plans/smollm2-135m-moa-50.toml \
        -o "$W/opt-$name" >"$O/optimize-$name.log" 2>&1 &&
        cp "$W/opt-$name/summary.txt" "$O/optimize-$name.txt" &&
        cp "$W/opt-$name/plan_0.toml" "$O/$name.toml"
}
if [ -n "$LAST" ]; then
    opt ppl-moa-50 0.5 "${P[@]}"
    opt ppl-moa-25 0.25 "${P[@]}"
    opt ret-moa-50 0.5 "${R[@]}"
    el "optimized"
fi

# 5. The new plans, merged into the baselines' report.
wait $EA
cp "$W/eval_a.json" "$O/" 2>/dev/null
NP=()
for n in ppl-moa-50 ppl-moa-25 ret-moa-50; do [ -f "$O/$n.toml" ] && NP+=(--plan "$O/$n.toml"); done
if [ "${#NP[@]}" -gt 0 ] && [ "$(left)" -gt 10 ]; then
    merge=(--no-uniform)
    [ -f "$W/eval_a.json" ] && merge+=(--merge "$W/eval_a.json")
    # shellcheck disable=SC2086
    timeout "$(left)" $M eval $E "${PT[@]}" "${merge[@]}" "${NP[@]}" --json "$O/eval.json" \
        --markdown "$O/eval.md" --heatmaps "$O/heatmaps" 2>"$O/eval_b.log"
    el "eval B done (exit $?)"
    cat "$O/eval.md"
else
    cat "$O/eval_a.md"
fi
