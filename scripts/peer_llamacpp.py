#!/usr/bin/env python3
"""Independent peer check, outside CI: greedy tokens of `moa generate --dense` against
llama.cpp on the same GGUF, over a few dozen chat prompts; reports where they diverge.

Setup (llama.cpp builds from source; a native build emits AMX instructions that fault
on these machines, so pin the ISA):
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON" python3 -m pip install llama-cpp-python
Run:
    cargo build --release --bin moa && target/release/moa model fetch
    python3 scripts/peer_llamacpp.py [--moa target/release/moa] [--n 24] [--new 32]

Both sides get the same token ids: the prompt is rendered here with SmolLM2's ChatML
template, tokenized by moa (`--print-ids`), and those ids are fed to llama.cpp.
moa runs with f32 storage (`--f32`) so differences are not f16 rounding; llama.cpp
computes with its own Q4_1 kernels (activations quantized to 8 bits), so a divergence at
a near-tie of two logits is expected. At each divergence the script prints llama.cpp's
own logit margin between its token and moa's: a margin well under one logit is a near-tie
that its 8-bit activations can flip; a large one would be a bug on one side.
"""
import argparse
import os
import re
import subprocess
import sys

QUESTIONS = [
    "What is 2+2?", "Name three primary colors.", "What is the capital of France?",
    "Write a haiku about the sea.", "Explain gravity in one sentence.",
    "What is a prime number?", "Give me a synonym for happy.", "How many legs does a spider have?",
    "What does a bee make?", "Translate 'good morning' to Spanish.", "What is 10 times 7?",
    "Name a famous painter.", "What is photosynthesis?", "Tell me a fun fact about cats.",
    "What is the boiling point of water?", "Who wrote Romeo and Juliet?",
    "What is the largest planet?", "Suggest a name for a dog.", "What is an atom?",
    "Why is the sky blue?", "List two fruits.", "What is a verb?", "How do plants drink water?",
    "What is the opposite of cold?", "Describe a rainbow.", "What is a triangle?",
    "What do you call a baby cow?", "How many days are in a week?", "What is ice made of?",
    "Tell me a short story about a robot.",
]


def chatml(q):
    return f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"


def moa_ids(moa, q, new):
    r = subprocess.run(
        [moa, "generate", "--dense", "--f32", "--raw", "--print-ids", "--ignore-eos",
         "--max-new-tokens", str(new), "--prompt", chatml(q)],
        capture_output=True, text=True, check=True)
    prompt = re.search(r"ids\[0\] prompt (\[.*\])", r.stderr).group(1)
    gen = re.search(r"ids\[0\] generated (\[.*\])", r.stderr).group(1)
    return eval(prompt), eval(gen)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moa", default="target/release/moa")
    ap.add_argument("--gguf", default=None)
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--new", type=int, default=32)
    a = ap.parse_args()
    gguf = a.gguf or subprocess.run([a.moa, "model", "fetch"], capture_output=True,
                                    text=True, check=True).stdout.strip()
    from llama_cpp import Llama
    llm = Llama(model_path=gguf, n_ctx=2048, logits_all=True, verbose=False, n_threads=os.cpu_count())
    same = 0
    first_div = []
    gaps = []
    for q in QUESTIONS[: a.n]:
        prompt, mine = moa_ids(a.moa, q, a.new)
        llm.reset()
        theirs = []
        for tok in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
            theirs.append(tok)
            if len(theirs) == a.new:
                break
        d = next((i for i, (x, y) in enumerate(zip(mine, theirs)) if x != y), None)
        if d is None:
            same += 1
            print(f"same ({a.new} tokens): {q}")
        else:
            first_div.append(d)
            # How close was llama.cpp itself to moa's token? Its logits at the divergence.
            llm.reset()
            llm.eval(prompt + theirs[:d])
            row = llm.scores[llm.n_tokens - 1]
            gap = float(row[theirs[d]] - row[mine[d]])
            gaps.append(gap)
            text = lambda ids: llm.detokenize(ids).decode("utf-8", "replace")
            print(f"diverge at token {d}: {q}\n"
                  f"  common    {text(mine[:d])!r}\n"
                  f"  moa       {text(mine[d:d+8])!r}\n"
                  f"  llama.cpp {text(theirs[d:d+8])!r}\n"
                  f"  llama.cpp logit of its token minus moa's: {gap:.3f}")
    print(f"\n{same}/{a.n} prompts identical for {a.new} tokens; "
          f"divergence positions: {sorted(first_div)}; llama.cpp's own logit margin at "
          f"each divergence: {sorted(round(g, 3) for g in gaps)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
