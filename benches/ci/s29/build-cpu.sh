#!/bin/bash
# usage: s29-ci-build.sh SRC TAG : CPU time of moa's own test build (deps already built) in the private target
set -u
cd "$1"
export CARGO_TARGET_DIR=/tmp/s29-ci-target
cargo clean -p moa -q 2>&1 | tail -1; touch /tmp/s29-ci-build.stamp
echo "== $2 $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -f "$2 test-build wall %e user %U sys %S" nice cargo test --no-run --locked --lib --bins --tests 2>&1 | grep -v "^ *Compiling\|Executable" | tail -5
echo "== $2 end $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
# keep this build's executables (the next clean removes them)
mkdir -p /tmp/s29-ci-bins-$2 && find /tmp/s29-ci-target/debug/deps -maxdepth 1 -type f -perm -u+x ! -name "*.so" ! -name "*.d" -newer /tmp/s29-ci-build.stamp -exec cp {} /tmp/s29-ci-bins-$2/ \;
cp /tmp/s29-ci-target/debug/moa /tmp/s29-ci-target/debug/moa-compile /tmp/s29-ci-bins-$2/ 2>/dev/null
ls /tmp/s29-ci-bins-$2 | wc -l
