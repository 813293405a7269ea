"""Argument checks shared by the PyTorch peers (benches/peers/*.py), run before PyTorch is
imported: `--help` and a bad value need no PyTorch, and a bad value is argparse's usage
error naming the flag (exit 2), not a traceback after the model is built (round 38 of the
new user's journey). The peers run on the GPU machine; this one may have no torch."""

import argparse
import os
import sys


def need_torch(cuda=True):
    """PyTorch (with a CUDA device where `cuda`), imported only once the arguments are
    checked, or exit 2 saying what is missing. A missing torch was a ModuleNotFoundError
    traceback before `--help` or a bad value could be answered (round 38 of the new
    user's journey: the peers run on the GPU machine; this one may have no torch)."""
    try:
        import torch
    except ImportError as e:
        sys.stderr.write(f"{sys.argv[0]}: this peer needs PyTorch ({e}); run it on the GPU "
                         "machine, which has it (`pip install torch`)\n")
        sys.exit(2)
    if cuda and not torch.cuda.is_available():
        sys.stderr.write(f"{sys.argv[0]}: this peer needs a CUDA device, and PyTorch "
                         f"{torch.__version__} sees none; run it on the GPU machine\n")
        sys.exit(2)
    return torch


def need_transformers():
    """transformers, imported once the arguments are checked, or exit 2 (as need_torch)."""
    try:
        import transformers
    except ImportError as e:
        sys.stderr.write(f"{sys.argv[0]}: this peer needs transformers ({e}); run it on the "
                         "GPU machine, which has it (`pip install transformers`)\n")
        sys.exit(2)
    return transformers


def whole(lo):
    """An argparse type: a whole number of `lo` or more (a bad one is argparse's usage
    error, naming the flag, not a traceback after the model is built)."""
    def parse(text):
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"`{text}` is not a whole number: allowed {lo} or more")
        if n < lo:
            raise argparse.ArgumentTypeError(f"{n}: allowed {lo} or more")
        return n
    return parse


def wholes(lo, also=()):
    """An argparse type: a comma list of whole numbers of `lo` or more (or words in `also`)."""
    one = whole(lo)

    def parse(text):
        out = []
        for x in text.split(","):
            if x in also:
                out.append(x)
                continue
            try:
                out.append(one(x))
            except argparse.ArgumentTypeError as e:
                extra = "".join(f", or `{w}`" for w in also)
                where = f"in `{text}`: " if "," in text else ""
                raise argparse.ArgumentTypeError(f"{where}{e}{extra}")
        return out
    return parse


def nonnegative(text):
    """An argparse type: a number of 0 or more."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a number: allowed 0 or more")
    if not x >= 0 or x == float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: allowed 0 or more (finite)")
    return x


def readable(text):
    """An argparse type: a file that can be read (checked before torch loads)."""
    try:
        with open(text):
            pass
    except OSError as e:
        raise argparse.ArgumentTypeError(f"cannot read `{text}`: {e.strerror}")
    return text


def writable(text):
    """An argparse type: an output file whose folder exists (checked before torch loads,
    not after the timings it would hold)."""
    folder = os.path.dirname(text) or "."
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"`{text}` is a folder: give a file name in it")
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"`{text}`: the folder `{folder}` does not exist")
    return text
