#!/bin/bash
# moa-compile into outputs it cannot or should not write.
C=${MOA_COMPILE:-moa-compile}; P=plan.toml
rm -rf co; mkdir -p co/ro co/full; touch co/afile; chmod 555 co/ro; chown -R 65534 co/full 2>/dev/null
echo hi > co/full/unrelated.txt; mkdir -p co/hasfiles/wgsl; echo "x" > co/hasfiles/wgsl/mine.wgsl
run() { s=$(date +%s.%N); timeout 120 "$@" > out.txt 2> err.txt; rc=$?; e=$(echo "$(date +%s.%N) - $s" | bc)
  printf '### %s\nexit %d, %.1f s\n' "$*" $rc $e; grep -q panicked err.txt && echo "!!! PANIC"; tail -c 600 err.txt | sed 's/^/    /'; echo; }
run $C $P -o co/afile -q
run $C $P -o co/afile/sub -q
run $C $P -o /proc/moa-out -q
run $C $P -o /dev/null -q
run $C $P -o "" -q
run setpriv --reuid=65534 --regid=65534 --clear-groups $C $P -o co/ro/out -q
run setpriv --reuid=65534 --regid=65534 --clear-groups $C $P -o co/ro -q
run $C $P -o co/full -q; ls co/full
run $C $P -o co/hasfiles -q
run $C $P -o co/ok -q
run $C p/sink-eq-ctx.toml -o co/ok -q
run $C $P -o co/ok --check
run $C $P -o co/ok --target cuda --dtype bf16 -q
run $C $P -o co/ok --target wgsl --dtype bf16 -q
run $C $P --check -o co/nonexistent
run $C $P -o co/ok/manifest.json -q
ln -sf /etc/passwd co/link; run $C $P -o co/link -q
mkdir -p co/loop; ln -sfn "$PWD/co/loop" co/loop/wgsl; run $C $P -o co/loop -q
