#!/bin/bash
# Session 33, lead call 7: the fused output -> gate/up decode dispatch with every phase's
# meeting run by every invocation (MOA_WGPU_DECODE_FUSED_MEET=1, the default now): call 6 ruled out
# the alignment; calls 4-6 found phase 1 wrong only after a meeting (S5, no meeting, right).
# G1M2 = one workgroup without a meeting.
#   bash .dev-s33-lead/call7.sh
# MODEL (before the call): B, S3 right (0.0496-0.0506, 3/3); speed as call 1 (+1.5..+2.5%
# tokens/s, every B above every A).
D=$(cd "$(dirname "$0")" && pwd)

RDIR=/tmp/s33diag7 bash "$D/diag4.sh" | grep -v "^\[t="
RUNS="B1:24:5:30 A1:24:5:30 A2:0:1:20 B2:0:1:20 B3:0:1:20 A3:0:1:20 A4:0:1:20 B4:0:1:20" END=100 RDIR=/tmp/s33call7 CALL=call7 bash "$D/call2.sh" | tail -22
