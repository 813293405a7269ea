#!/usr/bin/env python3
"""Session 21: session 20's schedule simulation (benches/prefill/s20/d_schedule_sim.py) with
the `z` ring of 5 stages (3 consumer warpgroups, `d`): one-tile blocks and persistent blocks
over the same rows, sinks, windows and query-tile sequences; `late` left out (removed).
No GPU: `python3 ring5_sim.py` prints `ok <cases>`.
"""
import pathlib
import random
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "s20"))
from d_schedule_sim import run  # noqa: E402


def main():
    rnd = random.Random(21)
    cnt = 0
    for S, NW in ((5, 3), (5, 2)):
        for sinkt in (0, 4, 64, 100, 128, 200):
            for len_ in [1, 5, 63, 64, 65, 100, 191, 192, 193, 300, 640, 1000, 2500]:
                for span in [1, 2, 10, 63, 64, 65, 100, 128, 129, 200, 256, 300, 500, 1000, 5000]:
                    sink = min(span, sinkt)
                    window = span - sink
                    t0s = list(range(0, len_, 64 * NW))
                    for t0 in t0s:
                        run([t0], len_, sink, window, S, NW, rnd)
                        cnt += 1
                    items = t0s[:]
                    rnd.shuffle(items)
                    run(items, len_, sink, window, S, NW, rnd)
                    cnt += 1
    print('ok', cnt)


if __name__ == '__main__':
    main()
