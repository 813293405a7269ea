# Sourced by scripts/main.sh and scripts/pipeline.sh after their release build: sets `bin`
# to the folder where cargo put the release binaries. That is target/release unless
# CARGO_TARGET_DIR (or a cargo config's build.target-dir) moves it; a fixed target/release
# failed "No such file or directory" right after a successful build for a user who sets
# CARGO_TARGET_DIR.
bin="$(cargo metadata --format-version 1 --no-deps --offline 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || true)"
bin="${bin:-${CARGO_TARGET_DIR:-target}}/release"
