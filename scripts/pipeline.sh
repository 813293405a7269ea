#!/usr/bin/env bash
# The MoA plan search for the default model (README "Plan search"): installs the Python
# documentation (filler of the quote task) if missing, builds moa, fetches the model, then
# runs calib -> profile -> optimize -> validate in runs/smollm2-135m and writes
# plans/smollm2-135m-moa-50.toml and -25.toml. Extra arguments go to `moa pipeline`
# (e.g. --gpu to validate on the GPU; --model FILE works in runs/<its name> and writes
# plans/<its name>-moa-*.toml). Re-running resumes from what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ls -d /usr/share/doc/python3*/html/_sources/tutorial >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-doc
fi
cargo build --release --locked --bin moa
# shellcheck source=scripts/bin-dir.sh
source scripts/bin-dir.sh  # the cwd is the repository root (cd above)
# The default model only when no --model is given. No --workdir or --plans-dir here: moa
# pipeline's defaults are plans/ and
# runs/<model> (runs/smollm2-135m for the default model), so that
# `./scripts/pipeline.sh --model mine.gguf` never resumes from SmolLM2's calibration
# (its token ids are another tokenizer's); a fixed --workdir here did that, and could not
# be overridden (clap refuses a flag given twice).
case " $* " in
    *" --model "* | *" --model="*) ;;
    *) "$bin/moa" model fetch ;;
esac
exec "$bin/moa" pipeline "$@"
