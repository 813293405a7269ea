#!/bin/bash
# Session 33, lead call 8: the fused output -> gate/up decode dispatch with every phase's
# meeting's workgroup variable one vec4<u32> (16 bytes; was 4-8 bytes, which could put the gate/up
# phase's staged x off 16-byte alignment: every module with the meeting wrong, the one without right).
#   bash .dev-s33-lead/call8.sh
# MODEL (before the call): B, S3 right (0.0496-0.0506, 3/3); speed as call 1 (+1.5..+2.5%
# tokens/s, every B above every A).
D=$(cd "$(dirname "$0")" && pwd)

RDIR=/tmp/s33diag8 bash "$D/diag4.sh" | grep -v "^\[t="
RUNS="B1:24:5:30 A1:24:5:30 A2:0:1:20 B2:0:1:20 B3:0:1:20 A3:0:1:20 A4:0:1:20 B4:0:1:20" END=100 RDIR=/tmp/s33call8 CALL=call8 bash "$D/call2.sh" | tail -22
