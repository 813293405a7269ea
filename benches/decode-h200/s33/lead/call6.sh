#!/bin/bash
# Session 33, lead call 6: the fused output -> gate/up decode dispatch with every phase's
# workgroup arrays a multiple of 16 bytes (the direct output phase's xs was one 8-byte element,
# so the gate/up phase's staged x began 8 bytes off: calls 4-5 found phase 1 wrong only when a
# phase came before it). Carry .dev-s33-lead; run tool timeout 170.
#   bash .dev-s33-lead/call6.sh
# MODEL (before the call): B, S3 right (0.0496-0.0506, 3/3); speed as call 1 (+1.5..+2.5%
# tokens/s, every B above every A).
D=$(cd "$(dirname "$0")" && pwd)

RDIR=/tmp/s33diag6 bash "$D/diag4.sh" | grep -v "^\[t="
RUNS="B1:24:5:30 A1:24:5:30 A2:0:1:20 B2:0:1:20 B3:0:1:20 A3:0:1:20 A4:0:1:20 B4:0:1:20" END=100 RDIR=/tmp/s33call6 CALL=call6 bash "$D/call2.sh" | tail -22
