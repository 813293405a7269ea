#!/bin/bash
# pipe2.sh WORKDIR PLANSDIR : the smaller pipeline of Journey C (SmolLM2, generated source)
B=${B:-/tmp/s32-user-bin}
exec $B/moa pipeline --workdir "$1" --plans-dir "$2" --name small --source generated \
  --profile-lengths 256 --validate-length 512 --samples 2 --validate-samples 1 \
  --densities 0.5 --text-samples 0 --time-limit 20
