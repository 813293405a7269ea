#!/bin/bash
# usage: SRC TAG: CPU time of `cargo clippy --all-targets` for moa's own crates (deps checked already) in the private target
set -u
cd "$1"; export CARGO_TARGET_DIR=/tmp/s29-ci-target
cargo clean -p moa -q 2>&1 | tail -1
echo "== $2 $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -f "$2 clippy wall %e user %U sys %S" nice cargo clippy --all-targets --locked -- -D warnings 2>&1 | grep -v "^ *Checking\|^ *Compiling" | tail -3
echo "== $2 end $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
