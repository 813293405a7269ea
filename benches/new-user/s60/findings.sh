#!/bin/bash
# Round 45's findings, each reproduced (run from a scratch folder; MOA, MOA_COMPILE and
# RANDOM_GGUF point at the binaries; U at tests/fixtures/upstream-plans). Before the fixes:
# 1. random_gguf ignored --layers (and any unknown flag): a 16-layer, 772 MB file.
# 2. moa generate --plan UPSTREAM.json of another shape: "convert ... with `moa plan import`",
#    a command that then fails.
# 3. moa generate --kernels CUDA-ONLY-FOLDER: "holds no wgsl kernels (compiled with --target cuda?)".
# 4. moa calib/profile --device cuda (no cuda feature) or --device gpu: refused after the load.
set -u
M=${MOA:-moa}; C=${MOA_COMPILE:-moa-compile}; R=${RANDOM_GGUF:-random_gguf}
U=${U:-tests/fixtures/upstream-plans}
echo "== 1"; rm -f x.gguf; /usr/bin/time -f "%e s %M KB" $R x.gguf --like llama-3.2-1b --mix q4_k_m --layers 2; echo "rc=$?"; ls -la x.gguf 2>/dev/null
$R x.gguf --layer 2; echo "rc=$?"
echo "== 2"; [ -d l1b-bf16 ] || $M model random --like llama-3.2-1b --layers 2 -o l1b-bf16
$M generate --model l1b-bf16 --plan $U/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json --raw --prompt hi; echo "rc=$?"
echo "== 3"; $M plan import $U/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json --layers 16 --heads 32 --kv-heads 8 --head-dim 64 --max-context 131072 --name l1b -o p1b-full.toml
python3 -c "
import json; d=json.load(open('$U/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json'))
json.dump({k:v[:2] for k,v in d.items()}, open('up1B-2l.json','w'))"
$M plan import up1B-2l.json --model l1b-bf16 -o p1b.toml
rm -rf kc; $C p1b.toml -o kc --target cuda -q
$M generate --model l1b-bf16 --plan p1b.toml --kernels kc --raw --prompt hi --max-new-tokens 1; echo "rc=$?"
echo "== 4"; for d in cuda gpu; do /usr/bin/time -f "%e s %M KB" $M calib --model l1b-bf16 --device $d --out c.jsonl; echo "rc=$?"; done
echo "== 5"; [ -d l3b-bf16 ] || $M model random --like llama-3.2-3b --layers 2 -o l3b-bf16
python3 -c "import random; random.seed(1); w='the quick brown fox jumps over a lazy dog'.split(); print(' '.join(random.choice(w) for _ in range(3000))[:11000])" > long11k.txt
/usr/bin/time -f "%e s %M KB" $M generate --model l3b-bf16 --dense --raw --prompt-file long11k.txt --max-new-tokens 1; echo "rc=$?"
/usr/bin/time -f "%e s %M KB" $M eval --model l3b-bf16 --lengths 12000 --depths 1 --tasks passkey --no-uniform --ppl-rows 0; echo "rc=$?"
echo "== 6"; /usr/bin/time -f "%e s %M KB" $M generate --model l3b-bf16 --dense --raw --prompt hi --max-new-tokens 70000; echo "rc=$?"
