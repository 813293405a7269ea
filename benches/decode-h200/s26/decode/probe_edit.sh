#!/bin/sh
# cuda_cubins --edit command of session 26's probe build: defines MOA_DECODE_SPEC_PROBE at
# the top of a kernel's source (stdin -> stdout), so the speculative merge (`d`, half
# partials) counts its merges and reloads past the partials (templates/cuda/decode.cu.j2).
# The cubin keeps the plain source's key: keep such cubins in a folder of their own.
echo '#define MOA_DECODE_SPEC_PROBE 1'
cat
