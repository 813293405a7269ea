#!/bin/bash
# Session 33, lead call 3: the fused output -> gate/up decode dispatch with phase 1 reading x
# through phase 0's `out` variable (one binding for the buffer the dispatch writes; call 2
# found the inf with one workgroup too, so not the meeting). Carry .dev-s33-lead (the release
# wpe of the fix, gl debs, call2.sh and diag1.sh); run tool timeout 150.
#   bash .dev-s33-lead/call3.sh
# MODEL (before the call): if the separate binding's aliasing was the cause, every fused run's
# parity is 0.0496 +- 0.003 (the output product on matrix units: C read 0.0506), argmax 3/3,
# G1 included; the speed pairs as call 1 (+1.5..+2.5% tokens/s; the four scalar x loads a row
# in place of one 16-byte load cost < 0.1 us). If still inf: something else in the composition.
D=$(cd "$(dirname "$0")" && pwd)
RDIR=/tmp/s33diag3 bash "$D/diag1.sh"
RUNS="B1:24:5:30 A1:24:5:30 A2:0:1:20 B2:0:1:20 B3:0:1:20 A3:0:1:20" END=95 RDIR=/tmp/s33call3 CALL=call3 bash "$D/call2.sh"
tar czf "${OUT:-/tmp}/s33-call3-diag.tgz" -C /tmp/s33diag3 .
