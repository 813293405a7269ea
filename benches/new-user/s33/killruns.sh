#!/bin/bash
# Interrupted runs: moa model random (SIGKILL) and moa optimize (SIGINT), then a re-run.
# PROFILES: the folder holding benches/profiling/influence_{1024,2048}.safetensors.
M=${MOA:-moa}; PROFILES=${PROFILES:?}
# python3 resets SIGINT, which a job started with & ignores, then execs the command itself
# (a shell function in between would take the signal instead).
NODFL='import signal,os,sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])'
rm -rf rk rk.partial-*
for d in 0 0.3 0.8; do
  $M model random --like smollm2-135m -o rk > /dev/null 2>&1 & p=$!
  until ls -d rk.partial-* > /dev/null 2>&1 || ! kill -0 $p 2>/dev/null; do sleep 0.05; done
  sleep $d; kill -KILL $p; wait $p 2>/dev/null
  echo "model random, SIGKILL $d s after its .partial folder appeared: left: $(ls -d rk rk.partial-* 2>/dev/null | tr '\n' ' ') ($(du -sh rk.partial-* 2>/dev/null | cut -f1 | tr '\n' ' '))"
done
$M model random --like smollm2-135m -o rk 2>&1 | tail -1; echo "re-run exit $?; left: $(ls -d rk rk.partial-* 2>/dev/null | tr '\n' ' '); rk: $(ls rk | tr '\n' ' ')"
opt() { $M optimize --profile "$PROFILES/influence_1024.safetensors" --profile "$PROFILES/influence_2048.safetensors" --density 0.5 -o "$1" --time-limit 20; }
rm -rf opt0 optk; opt opt0 > opt0.log 2>&1; echo "optimize uninterrupted: exit $?, $(ls opt0 | wc -l) files"
for d in 1 2.5 4; do
  rm -rf optk; python3 -c "$NODFL" $M optimize --profile "$PROFILES/influence_1024.safetensors" --profile "$PROFILES/influence_2048.safetensors" --density 0.5 -o optk --time-limit 20 > /dev/null 2>&1 & p=$!
  sleep $d; kill -INT $p; wait $p; echo "optimize, SIGINT at $d s: exit $?; left: $(ls -d optk 2>/dev/null) $(ls optk 2>/dev/null | tr '\n' ' ')"
done
opt optk > optk.log 2>&1; echo "optimize re-run: exit $?, $(ls optk | wc -l) files"
for f in opt0/plan_*.toml; do cmp -s <(grep -v '^notes' $f) <(grep -v '^notes' optk/${f#opt0/}) && echo "  ${f#opt0/}: same but notes" || echo "  ${f#opt0/}: DIFFERS"; done
diff <(grep -h '^notes' opt0/*.toml) <(grep -h '^notes' optk/*.toml) | head -4
