#!/bin/bash
# Issue 9 (session 9): a 25% plan that keeps the middle-depth pass keys, chosen on held-out
# data. Session 8's default (2k profile, loss minimised at 2k) missed keys at depths
# 0.44-0.82, mostly at 1k and 4k, the lengths it was not profiled at; its 4k candidates
# were poor because dense answered one of the 4k profile's two pass keys wrongly.
# Profiles (GPU, side by side, retrieval samples only: text weight 0 won at 25%):
#   1k: 9 samples (6 pass keys, 3 quotes); 2k: 6 (session 8's, so its plan is reproduced
#   as a check); 4k: 9 (6 pass keys). `moa profile --drop-wrong` leaves out every sample
#   whose dense answer is wrong, naming it.
# Candidates at 25% density (--gqa-native --max-alpha 0, the band also held at the
# unprofiled lengths of 1024/2048/4096/8192): the loss summed over 1k+2k+4k or 2k+4k, and
# the 4k loss alone (2k+4k profiles). Identical plans are validated once.
# Validation: seed-1 grid at 1k/2k/4k, 12 windows of python3-doc library text, beside
# dense and the kept 25% plan; select25.py applies the rule written before the run
# (docs/CALIBRATION.md, "The 25% plan"). Test: seed-0 grid with the 7.5k column and 24
# windows of the language reference; dense, uniform-25 and the kept plan are started first
# in the background, the chosen (or best) candidate is merged into their report.
# Environment: M (moa, `cuda` feature), W (work), O (output), D (carry: plans/, ppl/,
# select25.py, ppl_stats.py), DEADLINE (s), DEV (cuda; cpu for a dry run here).
set -u
M=${M:?}; W=${W:?}; O=${O:?}; D=${D:?}
DEV=${DEV:-cuda}; DL=${DEADLINE:-200}
TL=${TEST_LENGTHS:-1024,2048,4096,7680}; VL=${VAL_LENGTHS:-1024,2048,4096}
TP=${TEST_PPL:-"--ppl-rows 24 --ppl-length 4096 --ppl-scored 1024"}
VP=${VAL_PPL:-"--ppl-rows 12 --ppl-length 4096 --ppl-scored 1024"}
BK=${BACKEND:-"--backend cuda"}
L1=${L1:-1024}; L2=${L2:-2048}; L4=${L4:-4096}   # profile lengths (smaller for a dry run)
mkdir -p "$W" "$O"
t0=$(date +%s)
el() { echo "[$(($(date +%s) - t0)) s] $*"; }
left() { echo $((DL - ($(date +%s) - t0))); }
cap() { local c=$(($(left) - $1)); [ "$c" -lt 5 ] && c=5; echo $c; }
cp "$D/plans/smollm2-135m-moa-25.toml" "$W/kept-moa-25.toml"
cp "$D/plans/smollm2-135m-moa-50.toml" "$W/shape.toml"
PT=(); for f in "$D"/ppl/reference/*.rst.txt; do PT+=(--ppl-text "$f"); done
PV=(); for f in "$D"/ppl/library/*.rst.txt; do PV+=(--ppl-text "$f"); done
# shellcheck disable=SC2206
TEST=($BK --lengths "$TL" --depths 8 --seed 0 --quiet $TP "${PT[@]}")
# shellcheck disable=SC2206
VAL=($BK --lengths "$VL" --depths 8 --seed 1 --quiet $VP "${PV[@]}")

# 1. Background: the test grid's baselines (dense, uniform 25%, the kept 25% plan).
(timeout "${TEST_A_CAP:-120}" "$M" eval "${TEST[@]}" --plan "$W/kept-moa-25.toml" \
    --json "$W/test_a.json" >"$O/test_a.md" 2>"$O/test_a.log"
el "test A (baselines) done (exit $?)") &
TA=$!

# 2. Dense answers and profiles at 1k, 2k and 4k, side by side; wrong answers dropped.
prof() { # length samples
    [ "${REUSE:-0}" = 1 ] && [ -f "$W/calib$1.jsonl" ] || timeout "${CALIB_CAP:-45}" "$M" calib --device "$DEV" --out "$W/calib$1.jsonl" --lengths "$1" \
        --samples "$2" --seed 0 >"$O/calib$1.txt" 2>"$O/calib$1.log"
    el "calib $1 (exit $?): $(grep -E 'tokens +[0-9]+/' "$O/calib$1.txt" | tr -s ' ' | tr '\n' ';')"
    timeout "$(cap 100)" "$M" profile --device "$DEV" --calib "$W/calib$1.jsonl" --lengths "$1" \
        --drop-wrong -o "$W/p$1" --quiet >"$O/profile$1.log" 2>&1
    el "profile $1 (exit $?)"
    grep -- "--drop-wrong" "$O/profile$1.log"
    cp "$W/p$1/timing_$1.tsv" "$O/" 2>/dev/null
}
prof "$L1" 9 &
P1=$!
prof "$L2" 6 &
P2=$!
prof "$L4" 9 &
P4=$!
wait $P1 $P2 $P4

# 3. Candidates.
NP=()
opt() { # name "objective lengths" then the profile lengths
    local name=$1 obj=$2; shift 2
    local pr=() ex=() ob=()
    for n in "$@"; do pr+=(--profile "$W/p$n/influence_$n.safetensors"); done
    for n in $obj; do ob+=(--objective-length "$n"); done
    for n in 1024 2048 4096 8192; do [[ " $* " == *" $n "* ]] || ex+=(--extra-length "$n"); done
    for f in "${pr[@]}"; do
        [ "$f" = --profile ] || [ -f "$f" ] || { el "optimize $name: no $f"; return; }
    done
    if "$M" optimize "${pr[@]}" --density "${DENS:-0.25}" --gqa-native --max-alpha 0 \
        "${ob[@]}" "${ex[@]}" --plan-shape "$W/shape.toml" -o "$W/opt-$name" \
        >"$O/optimize-$name.log" 2>&1; then
        cp "$W/opt-$name/plan_0.toml" "$O/$name.toml"
        cp "$W/opt-$name/summary.txt" "$O/optimize-$name.txt"
        # Validate each distinct plan once (the rules, not the provenance, decide).
        for p in "$W/kept-moa-25.toml" "${NP[@]}"; do
            [ "$p" = --plan ] && continue
            if cmp -s <(grep -v -E '^(provenance|notes) =' "$p") \
                <(grep -v -E '^(provenance|notes) =' "$O/$name.toml"); then
                el "candidate $name has the same rules as $(basename "$p" .toml): not validated again"
                return
            fi
        done
        NP+=(--plan "$O/$name.toml")
    else
        el "optimize $name failed: $(tail -2 "$O/optimize-$name.log")"
    fi
}
opt c25-2k "$L2" "$L2"            # session 8's recipe: expected to equal the kept plan
opt c25s124 "$L1 $L2 $L4" "$L1" "$L2" "$L4"
opt c25s24 "$L2 $L4" "$L2" "$L4"
opt c25s14 "$L1 $L4" "$L1" "$L4"
opt c25x4 "$L4" "$L2" "$L4"
el "optimized: $((${#NP[@]} / 2)) distinct candidates to validate"

# 4. Validation: candidates, dense and the kept plan on the held-out grid and text.
if [ "${#NP[@]}" -gt 0 ]; then
    timeout "$(cap 35)" "$M" eval "${VAL[@]}" --no-uniform --plan "$W/kept-moa-25.toml" "${NP[@]}" \
        --json "$O/val.json" --markdown "$O/val.md" 2>"$O/val.log"
    el "validation eval (exit $?)"
    python3 "$D/select25.py" "$O/val.json" kept-moa-25 c25 | tee "$O/select.md"
fi
# The best candidate goes to the test grid whether or not the rule adopts it (the test
# only reports; the choice was made above).
C25=$(awk '$1=="BEST"{sub(":", "", $2); print $2}' "$O/select.md" 2>/dev/null)

# 5. Test: the best candidate merged into the baselines' report.
wait $TA
cp "$W/test_a.json" "$O/" 2>/dev/null
if [ -n "$C25" ] && [ "$(left)" -gt 8 ]; then
    merge=(--no-uniform)
    [ -f "$W/test_a.json" ] && merge+=(--merge "$W/test_a.json")
    timeout "$(left)" "$M" eval "${TEST[@]}" "${merge[@]}" --plan "$O/$C25.toml" \
        --json "$O/test.json" --markdown "$O/test.md" --heatmaps "$O/heatmaps" 2>"$O/test_b.log"
    el "test eval (exit $?)"
fi
for f in test val test_a; do
    [ -f "$O/$f.json" ] && python3 "$D/ppl_stats.py" "$O/$f.json" >"$O/ppl_stats_$f.md" 2>&1
done
cat "$O/val.md" 2>/dev/null; cat "$O/ppl_stats_val.md" 2>/dev/null
cat "$O/test.md" 2>/dev/null || cat "$O/test_a.md"
cat "$O/ppl_stats_test.md" 2>/dev/null || cat "$O/ppl_stats_test_a.md" 2>/dev/null
wait
el "end"
