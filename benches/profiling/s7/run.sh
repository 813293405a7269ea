#!/bin/bash
# Issue 9 (session 7): calibration with text samples, one 2k profile on the GPU, plans for
# several text weights (--text-weight) and floors (--min-beta), chosen by held-out
# validation (retrieval on another seed, perplexity on other text), then the chosen plans
# scored on the test grid beside dense, the uniform windows and the current defaults.
# Everything on the GPU through `moa eval --backend cuda` (perplexity from one prefill per
# window; `--ppl-method both` on the baselines compares it with decode steps).
#
# Environment: M (moa, `cuda` feature), W (work), O (output), D (carry folder: plans/,
# ppl/reference, ppl/library, select_plans.py, ppl_stats.py), DEADLINE (s, default 200),
# DEV (cuda; cpu for a dry run here), TEST_LENGTHS, VAL_LENGTHS, TEST_PPL, VAL_PPL, SAMPLES,
# TEXT, WEIGHTS, L (profile length, default 2048).
set -u
M=${M:?}; W=${W:?}; O=${O:?}; D=${D:?}
DEV=${DEV:-cuda}; DL=${DEADLINE:-200}; L=${L:-2048}
SAMPLES=${SAMPLES:-6}; TEXT=${TEXT:-6}; WEIGHTS=${WEIGHTS:-"0 1 3 8"}
TL=${TEST_LENGTHS:-1024,2048,4096,7680}; VL=${VAL_LENGTHS:-1024,2048,4096}
TP=${TEST_PPL:-"--ppl-rows 24 --ppl-length 4096 --ppl-scored 1024"}
VP=${VAL_PPL:-"--ppl-rows 12 --ppl-length 4096 --ppl-scored 1024"}
BK=${BACKEND:-"--backend cuda"}
mkdir -p "$W" "$O"
t0=$(date +%s)
el() { echo "[$(($(date +%s) - t0)) s] $*"; }
left() { echo $((DL - ($(date +%s) - t0))); }
cap() { local c=$(($(left) - $1)); [ "$c" -lt 5 ] && c=5; echo $c; }  # seconds left, less $1
cp "$D/plans/smollm2-135m-moa-50.toml" "$W/old-moa-50.toml"
cp "$D/plans/smollm2-135m-moa-25.toml" "$W/old-moa-25.toml"
PT=(); for f in "$D"/ppl/reference/*.rst.txt; do PT+=(--ppl-text "$f"); done
PV=(); for f in "$D"/ppl/library/*.rst.txt; do PV+=(--ppl-text "$f"); done
# shellcheck disable=SC2206
TEST=($BK --lengths "$TL" --depths 8 --seed 0 --quiet $TP "${PT[@]}")
# shellcheck disable=SC2206
VAL=($BK --lengths "$VL" --depths 8 --seed 1 --quiet $VP "${PV[@]}")

# 1. Background: the test grid's baselines (dense, uniform 50% and 25%, the current
#    defaults), perplexity by prefill and by decode steps side by side.
(timeout "${TEST_A_CAP:-150}" "$M" eval "${TEST[@]}" --ppl-method "${CHECK:-both}" \
    --plan "$W/old-moa-50.toml" --plan "$W/old-moa-25.toml" --json "$W/test_a.json" \
    >"$O/test_a.md" 2>"$O/test_a.log"
el "test A (baselines) done (exit $?)") &
TA=$!

# 2. Dense answers and text samples at L, then every sample's profile (stored).
timeout "${CALIB_CAP:-40}" "$M" calib --device "$DEV" --out "$W/calib.jsonl" --lengths "$L" --samples "$SAMPLES" \
    --text-samples "$TEXT" --text-scored 256 --seed 0 >"$O/calib.txt" 2>"$O/calib.log"
el "calib $L (exit $?)"
timeout "$(cap 100)" "$M" profile --device "$DEV" --calib "$W/calib.jsonl" --lengths "$L" \
    -o "$W/prof-w1" --quiet >"$O/profile.log" 2>&1
el "profile $L (exit $?)"
cp "$W"/prof-w1/timing_*.tsv "$W"/prof-w1/summary_*.tsv "$O/" 2>/dev/null

# 3. Background: the 4k time per sample (2 retrieval + 1 text sample; shares the GPU with
#    the evals, so an upper bound).
if [ "${SKIP_4K:-0}" != 1 ]; then
    (timeout 45 "$M" calib --device "$DEV" --out "$W/calib4k.jsonl" --lengths 4096 --samples 2 \
        --text-samples 1 --seed 0 >"$O/calib4k.txt" 2>&1 &&
        timeout 45 "$M" profile --device "$DEV" --calib "$W/calib4k.jsonl" --lengths 4096 \
            -o "$W/prof4k" --quiet >"$O/profile4k.log" 2>&1
    cp "$W"/prof4k/timing_4096.tsv "$O/" 2>/dev/null; el "4k timing done") &
fi

# 4. Profiles at each text weight from the same stored samples, and plans.
NP=()
for w in $WEIGHTS; do
    P=$W/prof-w$w
    if [ "$w" != 1 ]; then
        mkdir -p "$P"; ln -sfn "$W/prof-w1/samples" "$P/samples"
        "$M" profile --device cpu --calib "$W/calib.jsonl" --lengths "$L" -o "$P" \
            --text-weight "$w" --quiet >"$O/profile-w$w.log" 2>&1 || { el "weight $w failed"; continue; }
    fi
    [ -f "$P/influence_$L.safetensors" ] || continue
    for spec in "50 0.5 0" "50 0.5 0.25" "25 0.25 0"; do
        set -- $spec
        name=c$1-w$w-mb$3
        mb=(); [ "$3" != 0 ] && mb=(--min-beta "$3")
        if "$M" optimize --profile "$P/influence_$L.safetensors" --density "$2" --gqa-native \
            --max-alpha 0 "${mb[@]}" --objective-length "$L" --extra-length 1024 \
            --extra-length 4096 --extra-length 8192 --plan-shape "$W/old-moa-50.toml" \
            -o "$W/opt-$name" >"$O/optimize-$name.log" 2>&1; then
            cp "$W/opt-$name/plan_0.toml" "$O/$name.toml"
            cp "$W/opt-$name/summary.txt" "$O/optimize-$name.txt"
            NP+=(--plan "$O/$name.toml")
        fi
    done
done
el "optimized $((${#NP[@]} / 2)) candidates"

# 5. Validation: the candidates, dense and the uniform windows on the held-out grid.
if [ "${#NP[@]}" -gt 0 ]; then
    timeout "$(cap 45)" "$M" eval "${VAL[@]}" "${NP[@]}" --json "$O/val.json" \
        --markdown "$O/val.md" 2>"$O/val.log"
    el "validation eval (exit $?)"
    python3 "$D/select_plans.py" "$O/val.json" c50 c25 | tee "$O/select.md"
fi
C50=$(awk '$1=="CHOSEN" && $2=="c50"{print $3}' "$O/select.md" 2>/dev/null)
C25=$(awk '$1=="CHOSEN" && $2=="c25"{print $3}' "$O/select.md" 2>/dev/null)

# 6. Test: the chosen plans merged into the baselines' report.
wait $TA
cp "$W/test_a.json" "$O/" 2>/dev/null
CP=()
[ -n "$C50" ] && cp "$O/$C50.toml" "$O/chosen-moa-50.toml" && CP+=(--plan "$O/chosen-moa-50.toml")
[ -n "$C25" ] && cp "$O/$C25.toml" "$O/chosen-moa-25.toml" && CP+=(--plan "$O/chosen-moa-25.toml")
if [ "${#CP[@]}" -gt 0 ] && [ "$(left)" -gt 8 ]; then
    merge=(--no-uniform)
    [ -f "$W/test_a.json" ] && merge+=(--merge "$W/test_a.json")
    timeout "$(left)" "$M" eval "${TEST[@]}" "${merge[@]}" "${CP[@]}" --json "$O/test.json" \
        --markdown "$O/test.md" --heatmaps "$O/heatmaps" 2>"$O/test_b.log"
    el "test eval (exit $?)"
fi
for f in test val test_a; do
    [ -f "$O/$f.json" ] && python3 "$D/ppl_stats.py" "$O/$f.json" >"$O/ppl_stats_$f.md" 2>&1
done
cat "$O/test.md" 2>/dev/null || cat "$O/test_a.md"
cat "$O/ppl_stats_test.md" 2>/dev/null || cat "$O/ppl_stats_test_a.md" 2>/dev/null
grep -h "prefill vs" "$O/test_a.log"
wait
el "end"
