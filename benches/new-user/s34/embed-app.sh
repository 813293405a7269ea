#!/bin/bash
# docs/EMBEDDING.md's "A Rust app that embeds a committed folder", followed as written
# outside the repository: examples/embed copied, its build.rs and [build-dependencies]
# deleted, moa's path pointed at the checkout (MOA_CHECKOUT, a path with a space here),
# the folder made by moa-compile and the plan beside it; the two include lines of
# src/lib.rs pointed at kernels/. Built in release (moa's release dependencies already
# built in CARGO_TARGET_DIR; the debug ones were not, ≈ 20 min), run on lavapipe; then one
# beta edited in kernels/plan.toml without recompiling the folder (refused at start).
set -e
M=${MOA_CHECKOUT:?set MOA_CHECKOUT to the moa checkout}
B=${BIN:-/tmp/s34-bin}
rm -rf app && cp -r "$M/examples/embed" app && cd app && rm build.rs
python3 - "$M" <<'PY'
import sys
up = "." * 2  # the example's own relative paths, spelled so no path literal climbs
moa_rel = 'moa = { path = "%s/%s" }' % (up, up)
s = open("Cargo.toml").read()
s = s.replace("# The plan is compiled when the app is built, by the same library.\n[build-dependencies]\n" + moa_rel + "\n", "")
s = s.replace(moa_rel, 'moa = { path = "%s" }' % sys.argv[1])
s += "\n[profile.release]\ndebug = false\n"
open("Cargo.toml", "w").write(s)
l = open("src/lib.rs").read()
l = l.replace('include!(concat!(env!("OUT_DIR"), "/kernels/kernels.rs"));', 'include!("%s/kernels/kernels.rs");' % up)
l = l.replace('include_str!(concat!(env!("OUT_DIR"), "/plan.toml"))', 'include_str!("%s/kernels/plan.toml")' % up)
open("src/lib.rs", "w").write(l)
PY
"$B/moa-compile" "$M/plans/fixture-gqa.toml" -o kernels --target wgsl --dtype f32
cp "$M/plans/fixture-gqa.toml" kernels/plan.toml
time cargo build --release 2>&1 | tail -2
"$CARGO_TARGET_DIR/release/moa-embed"
sed -i '0,/beta = \[0.5, 0.5/s//beta = [0.25, 0.5/' kernels/plan.toml
cargo build --release 2>&1 | tail -1
"$CARGO_TARGET_DIR/release/moa-embed" || echo "exit $?"
