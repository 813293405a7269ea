#!/usr/bin/env python3
"""Simulates the synchronisation of the `k` prefill consumers (templates/cuda/prefill.cu.j2,
the `prefill_key_range` loop): two or three consumer warpgroups taking round-robin turns, each
computing only its own key tiles and taking dummy turns elsewhere, and the producer that
hands tile q over only after issuing tile q + 1 into the buffer of q + 1 - stages.

For every (rows, sink, window, block, stages) it checks that no party waits forever, that
each warpgroup takes n_tiles + 1 turns, that every buffer is released by all three, and
that each warpgroup computes every tile one of its own rows sees. No GPU; run
`python3 k_schedule_sim.py` (prints `ok <cases>`).
"""
# Deadlock / coverage simulation of the `k` consumer schedule (3 WGs, S stages, ring).
import itertools, random
def block_lists(t0, len_, sink, window, BN=64, BM=192):
    t1 = min(t0 + BM, len_)
    last = (t1 - 1) // BN
    band_first = last + 1 if window == 0 else (t0 + 1 - window if t0 + 1 > window else 0) // BN
    sink_tiles = min((min(sink, t1) + BN - 1) // BN, band_first)
    n = sink_tiles + (last + 1 - band_first)
    tile_at = lambda it: it if it < sink_tiles else band_first + (it - sink_tiles)
    return t1, last, band_first, sink_tiles, n, tile_at
def wg_program(w, t0, len_, sink, window, S, NW, BN=64):
    t1, last, band_first, sink_tiles, n, tile_at = block_lists(t0, len_, sink, window, BM=64 * NW)
    n_sink = sink_tiles; lo = sink_tiles; hi = n
    tw0 = t0 + w * 64
    if tw0 < t1 and window > 0:
        last_w = min(tw0 + 63, t1 - 1) // BN
        first_w = (tw0 + 1 - window if tw0 + 1 > window else 0) // BN
        sink_end = (min(sink, t1) + BN - 1) // BN
        gap_max = S - 3 if sink_tiles > 0 else S - 2
        lo = sink_tiles + (0 if band_first < sink_end else min(first_w - band_first, gap_max))
        hi = sink_tiles + (last_w + 1 - band_first)
    n_own = n_sink + (hi - lo)
    assert n_own >= 1 and lo <= hi
    pos = lambda j: j if j < n_sink else lo + (j - n_sink)
    ops = []
    def dummies(a, b):
        for q in range(a, b): ops.extend([('full', q), ('turn',), ('pass',), ('empty', q)])
    if n_sink == 0: dummies(0, lo)
    p0 = pos(0); ops.extend([('full', p0), ('turn',), ('mma', p0), ('pass',)])
    prev = p0; used = {p0}
    for j in range(1, n_own):
        if j == n_sink: dummies(n_sink, lo)
        it = pos(j); used.add(it)
        ops.extend([('full', it), ('turn',), ('mma', it), ('pass',), ('empty', prev)])
        prev = it
    dummies(hi, n)
    ops.append(('turn',))
    if w != NW - 1: ops.append(('pass',))
    ops.append(('empty', prev))
    # coverage: every tile this WG's rows see must be used
    for it in range(n):
        k0 = tile_at(it) * BN
        sees = any((key <= t and (key < sink or t - key < window)) for t in range(tw0, min(tw0 + 64, t1)) for key in range(k0, k0 + BN))
        if sees: assert it in used, (w, t0, len_, sink, window, it)
    return ops, n
def run(t0, len_, sink, window, S=4, NW=3):
    progs = []; n = None
    for w in range(NW):
        ops, n = wg_program(w, t0, len_, sink, window, S, NW); progs.append(ops)
    pc = [0] * NW; passes = [0] * NW; turns = [0] * NW
    passes[NW - 1] = 1  # the last warpgroup gives the first its first turn
    empty_cnt = {}; full = set(); prod = 0  # producer: next tile to load
    published = -1
    def producer_step():
        nonlocal prod, published
        moved = False
        while prod < n and (prod < S or empty_cnt.get(prod - S, 0) == NW):
            # load prod; publish prod-1
            if prod > 0: full.add(prod - 1)
            prod += 1; moved = True
        if prod == n and (n - 1) not in full: full.add(n - 1); moved = True
        return moved
    while True:
        moved = producer_step()
        for w in range(NW):
            while pc[w] < len(progs[w]):
                op = progs[w][pc[w]]
                if op[0] == 'full':
                    if op[1] not in full: break
                elif op[0] == 'turn':
                    prevw = (w - 1) % NW
                    if passes[prevw] < turns[w] + 1: break
                    turns[w] += 1
                elif op[0] == 'pass': passes[w] += 1
                elif op[0] == 'empty': empty_cnt[op[1]] = empty_cnt.get(op[1], 0) + 1
                pc[w] += 1; moved = True
        if all(pc[w] == len(progs[w]) for w in range(NW)): break
        if not moved: raise RuntimeError(f'deadlock t0={t0} len={len_} sink={sink} window={window} pcs={pc} ops={[progs[w][pc[w]] if pc[w] < len(progs[w]) else None for w in range(NW)]}')
    assert all(empty_cnt.get(i, 0) == NW for i in range(n)), empty_cnt
    assert turns == [n + 1] * NW, (turns, n)
random.seed(1); cnt = 0
for S, NW in ((3, 3), (4, 3), (3, 2), (4, 2)):
  for sinkt in (0, 4, 64, 100, 128, 200):
    for len_ in [1, 5, 63, 64, 65, 100, 191, 192, 193, 300, 640, 1000, 2500]:
      for span in [1, 2, 10, 63, 64, 65, 100, 128, 129, 200, 256, 300, 500, 1000, 5000]:
        sink = min(span, sinkt); window = span - sink
        for t0 in range(0, len_, 64 * NW):
            run(t0, len_, sink, window, S, NW); cnt += 1
print('ok', cnt)
