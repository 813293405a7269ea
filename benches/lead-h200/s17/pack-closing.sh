#!/bin/bash
# Fill the lead's carry folder for closing.sh: DEST (e.g. .dev-s17-lead) gets
#   pf/  bench_prefill.gz, cubins.tar.xz and plans/ from s17-prefill's carry (SRC_PF),
#   w/   wpe.gz, gl/ and call2.sh from s17-wgpu's carry (SRC_W), mg.gz = w/mg.gz,
#   mg.gz  the merged main's release tests/model_gpu.rs binary.
set -e
DEST=$1; SRC_PF=${SRC_PF:-.dev-s17-prefill}; SRC_W=${SRC_W:-.dev-s17-wgpu}
mkdir -p "$DEST/pf" "$DEST/w"
cp -a "$SRC_PF"/bench_prefill.gz "$SRC_PF"/cubins.tar.xz "$SRC_PF"/plans "$DEST/pf/"
cp -a "$SRC_W"/wpe.gz "$SRC_W"/gl "$SRC_W"/call2.sh "$DEST/w/"
MG=$(ls -t target/release/deps/model_gpu-* | grep -v '\.d$' | head -1)
gzip -c "$MG" > "$DEST/mg.gz"; cp "$DEST/mg.gz" "$DEST/w/mg.gz"
cp "$(dirname "$0")/closing.sh" "$DEST/"
du -sh "$DEST"
