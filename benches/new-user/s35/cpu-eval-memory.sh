#!/bin/bash
# Peak resident memory of `moa eval --backend cpu` (SmolLM2, one pass-key prompt, no
# perplexity) at three lengths, against what its memory check counts (MOA names the binary).
M=${MOA:-moa}
for L in 1024 2048 4096; do
  /usr/bin/time -v "$M" eval --backend cpu --lengths $L --depths 1 --tasks passkey --ppl-rows 0 --quiet > ev$L.txt 2> ev$L.err
  echo "L=$L exit $? maxRSS $(grep 'Maximum resident' ev$L.err | awk '{print $6}') kB; wall $(grep 'Elapsed' ev$L.err | awk '{print $8}')"
done
