#!/usr/bin/env python3
"""Simulates the synchronisation of the `d` prefill consumers (templates/cuda/prefill.cu.j2,
`prefill_own_bands`): each consumer warpgroup computes only its own key positions (the block's
sink tiles and its own 64 rows' band), its sections counted on their own, so that warpgroup w's
k-th section is at its own k-th position, not at the block's k-th; round-robin turns over the
sections, every warpgroup taking n_sec + 1 turns a query tile (n_sec = the largest own count;
pad turns before the last section), released-without-computing positions (wait full, arrive
empty) before the first own band position and after the epilogue. The producer hands a
landed tile over before it blocks on a ring slot (`d`'s producer rule), so a tile's hand-over
waits only for its own slot's release. With `t`, several query tiles run on one ring (positions
continue), the Q tiles alternate (qfull / qempty) and the last warpgroup's last turn goes to the
next query tile. Interleavings are explored with random schedules.

For every case it checks that no party waits forever, that every warpgroup takes the same number
of turns, that every position is released by all warpgroups, and that each warpgroup computes
every tile one of its own rows sees; with `t` also in the `l` order (a query tile's epilogue
after the next one's first section is issued; 4 stages). No GPU: `python3 d_schedule_sim.py` prints `ok <cases>`.
"""
import random

BN = 64


def geometry(t0, len_, sink, window, NW):
    BM = 64 * NW
    t1 = min(t0 + BM, len_)
    last = (t1 - 1) // BN
    band_first = last + 1 if window == 0 else (t0 + 1 - window if t0 + 1 > window else 0) // BN
    sink_tiles = min((min(sink, t1) + BN - 1) // BN, band_first)
    n = sink_tiles + (last + 1 - band_first)
    return t1, band_first, sink_tiles, n


def own_range(w, t0, t1, band_first, sink_tiles, n, sink, window, S):
    """(lo, hi): own positions [0, sink_tiles) + [lo, hi), as the template computes them."""
    # A warpgroup whose rows all lie past the row's end takes warpgroup 0's range (its rows
    # are never written): the last warpgroup with rows.
    w = min(w, (t1 - 1 - t0) // 64)
    tw0 = t0 + w * 64
    if window == 0:
        return sink_tiles, n
    last_w = min(tw0 + 63, t1 - 1) // BN
    first_w = (tw0 + 1 - window if tw0 + 1 > window else 0) // BN
    sink_end = (min(sink, t1) + BN - 1) // BN
    lo = sink_tiles + (0 if band_first < sink_end else min(first_w - band_first, S - 2))
    hi = sink_tiles + (last_w + 1 - band_first)
    return lo, hi


def programs(items, len_, sink, window, S, NW, late=False):
    """Per warpgroup, its ops over the block's query tiles (t0 of each). `late` (the `l`
    letter): a query tile's epilogue (its last P·V's wait and release, the Q tile's release,
    the end positions' release) comes after the next query tile's first section is issued."""
    progs = [[] for _ in range(NW)]
    prod = []
    rb = 0
    parts = [[] for _ in range(NW)]  # per warpgroup, per tile: (head, body, tail)
    for j, t0 in enumerate(items):
        t1, band_first, sink_tiles, n = geometry(t0, len_, sink, window, NW)
        rng = [own_range(w, t0, t1, band_first, sink_tiles, n, sink, window, S) for w in range(NW)]
        n_own = [sink_tiles + hi - lo for lo, hi in rng]
        n_sec = max(n_own)
        prod.append(('tile', j, rb, n))
        for w in range(NW):
            head, body, tail = [], [], []
            lo, hi = rng[w]
            own = list(range(sink_tiles)) + list(range(lo, hi))
            assert own and own == sorted(set(own)), (own, lo, hi)
            head.append(('qfull', j))
            gap = list(range(sink_tiles, lo))
            prev = None
            for k, p in enumerate(own):
                ops = head if k == 0 else body
                if p >= lo and gap and (prev is None or prev < sink_tiles):
                    for q in gap:
                        ops.extend([('full', rb + q), ('empty', rb + q)])
                    gap = []
                ops.extend([('full', rb + p), ('turn',), ('mma', rb + p, w, t0), ('pass',)])
                if prev is not None:
                    ops.append(('empty', rb + prev))
                prev = p
            for _ in range(n_sec - len(own)):
                body.extend([('turn',), ('pass',)])
            body.append(('turn',))
            if w != NW - 1:
                body.append(('pass',))
            tail.append(('empty', rb + prev))
            tail.append(('qempty', j))
            for q in range(hi, n):
                tail.extend([('full', rb + q), ('empty', rb + q)])
            parts[w].append((head, body, tail))
            # coverage: every tile this warpgroup's rows see is computed
            tw0 = t0 + w * 64
            tile_at = lambda it: it if it < sink_tiles else band_first + (it - sink_tiles)
            for it in range(n):
                k0 = tile_at(it) * BN
                sees = any(key <= t and (key < sink or t - key < window)
                           for t in range(tw0, min(tw0 + 64, t1)) for key in range(k0, k0 + BN))
                if sees:
                    assert it in own, (w, t0, len_, sink, window, it, own)
        rb += n
    J = len(items)
    for w in range(NW):
        ops = progs[w]
        for j in range(J):
            head, body, tail = parts[w][j]
            if not late or j == 0:
                ops.extend(head)
            ops.extend(body)
            handoff = [('qfull', j + 1)] + ([('pass',)] if w == NW - 1 and j + 1 < J else [])
            if late:
                ops.extend(handoff)
                if j + 1 < J:
                    ops.extend(parts[w][j + 1][0][1:])  # the next tile's first section (qfull seen)
                ops.extend(tail)
            else:
                ops.extend(tail)
                if w == NW - 1:
                    ops.extend(handoff)
    return progs, prod, rb


def run(items, len_, sink, window, S, NW, rnd, late=False):
    progs, ptiles, total = programs(items, len_, sink, window, S, NW, late)
    pc = [0] * NW
    passes = [0] * NW
    turns = [0] * NW
    passes[NW - 1] = 1  # the last warpgroup gives the first its first turn
    empty_cnt = {}
    qempty_cnt = {}
    full = set()
    qfull = set()
    # Producer state machine: a list of steps over tiles.
    steps = []
    for j, rb, n in [(t[1], t[2], t[3]) for t in ptiles]:
        steps.append(('q', j))
        for pos in range(rb, rb + n):
            steps.append(('kv', pos))
    steps.append(('end', len(ptiles)))
    ps = 0
    pend = None  # ('full', pos) or ('qfull', j)

    def hand_over():
        nonlocal pend
        if pend is not None:
            (full if pend[0] == 'full' else qfull).add(pend[1])
            pend = None

    def producer_step():
        nonlocal ps, pend
        if ps == len(steps):
            return False
        kind, x = steps[ps]
        if kind == 'q':
            if late:
                # `l`: the previous query tile's last K/V tile is handed over before the next
                # tile's number and Q (whose slot waits for a release that `l` defers).
                hand_over()
            if x >= 2 and qempty_cnt.get(x - 2, 0) < NW:
                return False
            # load Q, cp_wait<1>, hand over the previous pending
            hand_over()
            pend = ('qfull', x)
        elif kind == 'kv':
            if x >= S and empty_cnt.get(x - S, 0) < NW:
                # `d`: hand over what has landed before blocking
                hand_over()
                return False
            hand_over()  # after issuing x's copies: the previous pending
            pend = ('full', x)
        else:
            hand_over()
            qfull.add(x)  # the end mark
        ps += 1
        return True

    while True:
        moved = False
        order = list(range(NW + 1))
        rnd.shuffle(order)
        for who in order:
            if who == NW:
                for _ in range(rnd.randint(1, 3)):
                    moved |= producer_step()
                continue
            w = who
            for _ in range(rnd.randint(1, 4)):
                if pc[w] >= len(progs[w]):
                    break
                op = progs[w][pc[w]]
                if op[0] == 'full':
                    if op[1] not in full:
                        break
                elif op[0] == 'qfull':
                    if op[1] not in qfull:
                        break
                elif op[0] == 'turn':
                    prevw = (w - 1) % NW
                    if passes[prevw] < turns[w] + 1:
                        break
                    turns[w] += 1
                elif op[0] == 'pass':
                    passes[w] += 1
                elif op[0] == 'empty':
                    empty_cnt[op[1]] = empty_cnt.get(op[1], 0) + 1
                elif op[0] == 'qempty':
                    qempty_cnt[op[1]] = qempty_cnt.get(op[1], 0) + 1
                pc[w] += 1
                moved = True
        if all(pc[w] == len(progs[w]) for w in range(NW)) and ps == len(steps):
            break
        if not moved:
            # only a deadlock if no party can move under any schedule: retry a full sweep
            stuck = True
            for w in range(NW):
                if pc[w] < len(progs[w]):
                    op = progs[w][pc[w]]
                    ok = ((op[0] == 'full' and op[1] in full) or (op[0] == 'qfull' and op[1] in qfull)
                          or (op[0] == 'turn' and passes[(w - 1) % NW] >= turns[w] + 1)
                          or op[0] in ('pass', 'empty', 'qempty', 'mma'))
                    stuck &= not ok
            if stuck:
                ps_state = steps[ps] if ps < len(steps) else None
                raise RuntimeError(f'deadlock items={items} len={len_} sink={sink} window={window} S={S} '
                                   f'pcs={pc} ops={[progs[w][pc[w]] if pc[w] < len(progs[w]) else None for w in range(NW)]} producer={ps_state}')
    assert all(empty_cnt.get(i, 0) == NW for i in range(total)), empty_cnt
    assert len(set(turns)) == 1, turns


def main():
    rnd = random.Random(1)
    cnt = 0
    for S, NW in ((3, 3), (4, 3), (4, 2)):
        for sinkt in (0, 4, 64, 100, 128, 200):
            for len_ in [1, 5, 63, 64, 65, 100, 191, 192, 193, 300, 640, 1000, 2500]:
                for span in [1, 2, 10, 63, 64, 65, 100, 128, 129, 200, 256, 300, 500, 1000, 5000]:
                    sink = min(span, sinkt)
                    window = span - sink
                    t0s = list(range(0, len_, 64 * NW))
                    # one-tile blocks, and one persistent block taking every tile (in a random order)
                    for t0 in t0s:
                        run([t0], len_, sink, window, S, NW, rnd)
                        cnt += 1
                    # `l` needs 4 stages: a warpgroup holds its last own position (up to 3
                    # before the query tile's end) while the next tile's first section waits
                    # for the release of the position 4 before it (3 stages deadlock).
                    for late in ((False, True) if S >= 4 else (False,)):
                        items = t0s[:]
                        rnd.shuffle(items)
                        run(items, len_, sink, window, S, NW, rnd, late)
                        cnt += 1
    print('ok', cnt)


if __name__ == '__main__':
    main()
