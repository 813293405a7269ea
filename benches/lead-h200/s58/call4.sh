#!/bin/bash
# Session 58, lead call 4: call 3 again with matvec_q.wgsl's code width a pipeline constant (BITS: the loop over a
# word's 4-weight steps has a constant bound and the word's components constant indices once unrolled). Quantized
# decode products on matvec_q.wgsl against the f16 copy on matvec_sg.wgsl; Llama-3.2-1B and 3B shapes, Q4_K_M
# (random_gguf), one row, 2 040-token prompt, 256 greedy steps, each setting twice in turn. Binary: 97514998.
# PREDICTED (call 3: 0.90-1.0x at 1B, 0.97x at 3B): quantized decode >= 1.1x f16 at 3B; same ids.
CALL=call4 exec bash "$(dirname "$0")/call3.sh"
