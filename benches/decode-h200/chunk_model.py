#!/usr/bin/env python3
"""The fluid model behind the decode chunk policy `stream` (runtime::worklist::ChunkPolicy),
fitted to attention_bench timings (benches/RESULTS.md, "Call 7").

A decode launch over a work list of items (chunks of segments) on S resident block slots
(264 for the default 4x3 kernel on the H200): items start in order as slots free up; each
item spends p µs before streaming (work item, first tiles' latency), then streams its
slots × 512 bytes (bf16, head_dim 128, K and V) at min(rb, R / n) where n blocks stream at
once (the memory's rate R shared, capped at one block's rate rb), then spends e µs (partial
or output write; half of it for a segment of one chunk), and the segment's last chunk
adds m0 + m1 · chunks (the merge); L µs per launch. Parameters are fitted per GQA group
size (MHA, GQA) by coordinate descent on the squared log error.

    python3 chunk_model.py fit --spans spans.json call6-moa-4x3.jsonl call4-sweep-chunks.jsonl
    python3 chunk_model.py predict --spans spans.json --params params.json dry.jsonl
    python3 chunk_model.py cluster --spans spans.json --params params.json --peers peers.jsonl bench.jsonl
    python3 chunk_model.py fitcluster --spans spans.json --params params.json bench-*.jsonl

`cluster` predicts what thread-block clusters (one per segment, merged in distributed
shared memory) would save against the measured default; `fitcluster` fits their cost.

`predict` reads attention_bench --dry-run-blocks lines (the chunks a policy picks) and
prints the modelled time per policy and configuration, against the model's best chunk.
"""
import argparse
import heapq
import json
import math

SLOT_BYTES = 512.0


def load_segments(path):
    return {(m["model"], m["prompt"]): {l["layer"]: l["segment_span"] for l in m["layers"]}
            for m in json.load(open(path))}


def items_for(segs, rows, chunk):
    """[(slots, chunks of its segment)] in the work list's order (rows at N - 1: every
    segment full)."""
    out = []
    for _ in range(rows):
        for s in segs:
            n = max(1, -(-s // chunk))
            out.extend((min(chunk, s - c * chunk), n) for c in range(n))
    return out


def simulate(items, P, blocks=264):
    """Modelled µs of one launch (event-driven fluid simulation)."""
    t, V = 0.0, 0.0  # V: bytes each streaming block has received so far
    fixed, stream = [], []
    seg_of, left, k, sid = [], {}, 0, -1
    for _, n in items:
        if k == 0:
            sid += 1
            k = n
            left[sid] = n
        seg_of.append(sid)
        k -= 1
    nxt = 0
    while nxt < len(items) and nxt < blocks:
        heapq.heappush(fixed, (P["p"], nxt, 0))
        nxt += 1
    while fixed or stream:
        rate = min(P["rb"], P["R"] / len(stream)) if stream else 0.0
        tf = fixed[0][0] if fixed else math.inf
        ts = t + (stream[0][0] - V) / rate if stream else math.inf
        if tf <= ts:
            V += rate * (tf - t)
            t = tf
            _, i, done = heapq.heappop(fixed)
            if not done:
                heapq.heappush(stream, (V + items[i][0] * SLOT_BYTES, i))
            elif nxt < len(items):
                heapq.heappush(fixed, (t + P["p"], nxt, 0))
                nxt += 1
        else:
            V += rate * (ts - t)
            t = ts
            _, i = heapq.heappop(stream)
            n = items[i][1]
            left[seg_of[i]] -= 1
            cost = P["e"] if n > 1 else 0.5 * P["e"]
            if n > 1 and left[seg_of[i]] == 0:
                cost += P["m0"] + P["m1"] * n
            heapq.heappush(fixed, (t + cost, i, 1))
    return t + P["L"]


def cluster_items(segs, rows, size, tile=64):
    """[(slots, size)]: every segment cut into `size` chunks of ceil(slots / size) rounded up
    to the key tile (a thread-block cluster per segment; trailing chunks may be empty)."""
    out = []
    for _ in range(rows):
        for s in segs:
            c = max(tile, -(-(-(-s // size)) // tile) * tile)
            out.extend((max(0, min(c, s - i * c)), size) for i in range(size))
    return out


def simulate_cluster(items, P, ec, mc, blocks=264):
    """simulate() for a list whose segments are thread-block clusters of `size` items
    (items[i][1]): a block that has streamed its chunk holds its slot until every block of
    its cluster has, then all spend ec (state to shared memory, cluster barrier) + mc (the
    merge through distributed shared memory) µs; no partial writes, no global merge. A
    cluster starts only when `size` slots are free."""
    t, V = 0.0, 0.0
    fixed, stream = [], []
    size = items[0][1]
    left = {}
    nxt = 0
    free = blocks
    def start(now):
        nonlocal nxt, free
        while nxt < len(items) and free >= size:
            for i in range(nxt, nxt + size):
                heapq.heappush(fixed, (now + P["p"], i, 0))
            left[nxt // size] = size
            nxt += size
            free -= size
    start(0.0)
    while fixed or stream:
        rate = min(P["rb"], P["R"] / len(stream)) if stream else 0.0
        tf = fixed[0][0] if fixed else math.inf
        ts = t + (stream[0][0] - V) / rate if stream else math.inf
        if tf <= ts:
            V += rate * (tf - t)
            t = tf
            _, i, done = heapq.heappop(fixed)
            if done == 0:
                heapq.heappush(stream, (V + items[i][0] * SLOT_BYTES, i))
            elif done == 1:
                free += 1
                start(t)
        else:
            V += rate * (ts - t)
            t = ts
            _, i = heapq.heappop(stream)
            c = i // size
            left[c] -= 1
            if left[c] == 0:
                cost = (ec + mc) if size > 1 else 0.5 * P["e"]
                for j in range(c * size, c * size + size):
                    heapq.heappush(fixed, (t + cost, j, 1))
    return t + P["L"]


def group_params(P, model):
    g = "mha" if model.startswith("vicuna") else "gqa"
    return {k: P[k] for k in ("L", "p", "R")} | {k: P[f"{k}_{g}"] for k in ("e", "rb", "m0", "m1")}


def fit(args):
    segs = load_segments(args.spans)
    acc = {}
    for path in args.jsonl:
        for line in open(path):
            r = json.loads(line)
            if r.get("launch", "plain") != "plain" or r["variant"] != "4x3":
                continue
            acc.setdefault((r["model"], r["batch"], r["prompt"], r["layer"], r["chunk"]), []).append(r["us"])
    pts = [(k, sum(v) / len(v), items_for(segs[(k[0], k[2])][k[3]], k[1], k[4])) for k, v in acc.items()]

    def loss(P):
        return sum(math.log(simulate(it, group_params(P, k[0])) / us) ** 2 for k, us, it in pts) / len(pts)

    P = {"L": 3.5, "p": 1.0, "R": 4.5e6}
    for g in ("mha", "gqa"):
        P |= {f"e_{g}": 1.3, f"rb_{g}": 48e3, f"m0_{g}": 2.0, f"m1_{g}": 0.08}
    best, step = loss(P), {k: 0.2 for k in P}
    for it in range(args.iterations):
        for k in list(P):
            for sgn in (1, -1):
                Q = dict(P)
                Q[k] = P[k] * (1 + sgn * step[k])
                lq = loss(Q)
                if lq < best:
                    best, P = lq, Q
                    break
            else:
                step[k] *= 0.6
        print(f"iteration {it}: rms log error {math.sqrt(best):.4f}", flush=True)
    print(json.dumps(P))


def predict(args):
    segs = load_segments(args.spans)
    P = json.load(open(args.params))
    rows = [json.loads(l) for l in open(args.dry)]
    memo = {}

    def t_of(model, b, prompt, layer, chunk):
        key = (model, b, prompt, layer, chunk)
        if key not in memo:
            memo[key] = simulate(items_for(segs[(model, prompt)][layer], b, chunk), group_params(P, model), args.blocks)
        return memo[key]

    out = {}
    for r in rows:
        k = (r["model"], r["batch"], r["prompt"], r["layer"])
        t = t_of(*k, r["chunk"])
        best = min(t_of(*k, 64 * m) for m in range(1, 65)) if args.best else t
        out.setdefault(k[:3], {}).setdefault(r["chunk_arg"], []).append((t, t / best))
    print("| model | B | prompt | policy | modelled µs, sum of layers | / model's best chunk, geomean / max |")
    print("|---|---|---|---|---|---|")
    for cfg, pols in sorted(out.items()):
        for p, v in pols.items():
            r = [x[1] for x in v]
            print(f"| {cfg[0]} | {cfg[1]} | {cfg[2]} | {p} | {sum(x[0] for x in v):.0f} | "
                  f"{math.exp(sum(map(math.log, r)) / len(r)):.3f} / {max(r):.3f} |")


def cluster(args):
    """Per configuration: the measured time of the default policy (attention_bench lines
    with --policy's chunk), its modelled time, and the modelled time of one thread-block
    cluster of C in --sizes per segment, scaled by measured / modelled; counts of layers
    at >= 3.8 TB/s and at >= 0.95 x SDPA."""
    segs = load_segments(args.spans)
    P = json.load(open(args.params))
    rows = [json.loads(l) for l in open(args.bench)]
    peers = [json.loads(l) for l in open(args.peers)] if args.peers else []
    sdpa = {(r["model"], r["batch"], r["prompt"]): r["tbps"] for r in peers if r["impl"] == "sdpa"}
    sizes = [int(x) for x in args.sizes.split(",")]
    by = {}
    for r in rows:
        pol = args.policy_mha if r["model"].startswith("vicuna") else args.policy_gqa
        if r["chunk_arg"] == pol and r.get("launch", "plain") == "plain":
            by.setdefault((r["model"], r["batch"], r["prompt"]), []).append(r)
    print(f"e_c = {args.ec} µs, m_c = {args.mc} µs")
    print("| model | B | prompt | measured: ≥3.8 / ≥0.95 SDPA | modelled / measured geomean | cluster: best C per layer | predicted time / now geomean (min) | predicted ≥3.8 / ≥0.95 SDPA |")
    print("|---|---|---|---|---|---|---|---|")
    for cfg, rs in sorted(by.items()):
        model, b, prompt = cfg
        G = group_params(P, model)
        ratio, pred, cs, now38, now95, p38, p95 = [], [], [], 0, 0, 0, 0
        for r in sorted(rs, key=lambda r: r["layer"]):
            sp = segs[(model, prompt)][r["layer"]]
            tm = simulate(items_for(sp, b, r["chunk"]), G)
            ratio.append(tm / r["us"])
            best = min((simulate_cluster(cluster_items(sp, b, c), G, args.ec, args.mc), c) for c in sizes)
            tc = min(best[0], tm)
            cs.append(best[1] if best[0] < tm else 0)
            new_us = r["us"] * tc / tm
            pred.append(tc / tm)
            tb = r["kv_bytes"] / new_us / 1e6
            now38 += r["tbps"] >= 3.8
            now95 += r["tbps"] >= 0.95 * sdpa.get(cfg, 1e9)
            p38 += tb >= 3.8
            p95 += tb >= 0.95 * sdpa.get(cfg, 1e9)
        gm = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))
        hist = {c: cs.count(c) for c in sorted(set(cs))}
        print(f"| {model} | {b} | {prompt} | {now38} / {now95} | {gm(ratio):.3f} | {hist} | {gm(pred):.3f} ({min(pred):.3f}) | {p38} / {p95} |")


def fitcluster(args):
    """The cluster state + merge cost (ec + mc, µs) that fits attention_bench lines timed
    with cluster:SIZE policies (JSON field "cluster" > 1), the other parameters as fitted:
    a grid search on the squared log error, per GQA group kind; also the rms error of the
    equal-chunk lines of the same run (the parameters' drift since they were fitted)."""
    segs = load_segments(args.spans)
    P = json.load(open(args.params))
    rows = [json.loads(l) for f in args.jsonl for l in open(f) if l.strip()]
    for kind in ("mha", "gqa"):
        sel = [r for r in rows if (r["model"].startswith("vicuna")) == (kind == "mha")]
        eq = [r for r in sel if r.get("cluster", 1) <= 1 and not r["reused"]]
        cl = [r for r in sel if r.get("cluster", 1) > 1 and not r["reused"]]
        if not sel:
            continue
        err = lambda xs: math.sqrt(sum(x * x for x in xs) / max(1, len(xs)))
        G = group_params(P, sel[0]["model"])
        e_eq = [math.log(simulate(items_for(segs[(r["model"], r["prompt"])][r["layer"]], r["batch"], r["chunk"]), G) / r["us"]) for r in eq]
        its = [(cluster_items(segs[(r["model"], r["prompt"])][r["layer"]], r["batch"], r["cluster"]), r["us"]) for r in cl]
        best = None
        for c10 in range(0, 61):
            c = c10 / 10
            e = [math.log(simulate_cluster(it, G, c, 0.0) / us) for it, us in its]
            if best is None or err(e) < best[1]:
                best = (c, err(e), sum(e) / max(1, len(e)))
        print(f"{kind}: equal chunks rms log error {err(e_eq):.4f} (mean {sum(e_eq) / max(1, len(e_eq)):+.4f}, {len(e_eq)} lines); "
              f"clusters: ec + mc = {best[0]:.1f} µs, rms {best[1]:.4f} (mean {best[2]:+.4f}, {len(its)} lines)")


ap = argparse.ArgumentParser()
sub = ap.add_subparsers(dest="cmd", required=True)
f = sub.add_parser("fit")
f.add_argument("--spans", required=True)
f.add_argument("--iterations", type=int, default=12)
f.add_argument("jsonl", nargs="+")
p = sub.add_parser("predict")
p.add_argument("--spans", required=True)
p.add_argument("--params", required=True)
p.add_argument("--blocks", type=int, default=264)
p.add_argument("--best", action="store_true", help="also search the model's best chunk (slow)")
p.add_argument("dry")
c = sub.add_parser("cluster")
c.add_argument("--spans", required=True)
c.add_argument("--params", required=True)
c.add_argument("--peers")
c.add_argument("--policy-gqa", default="waves:10")
c.add_argument("--policy-mha", default="waves:2")
c.add_argument("--sizes", default="1,2,4,8")
c.add_argument("--ec", type=float, default=0.4)
c.add_argument("--mc", type=float, default=0.6)
c.add_argument("bench")
fc = sub.add_parser("fitcluster")
fc.add_argument("--spans", required=True)
fc.add_argument("--params", required=True)
fc.add_argument("jsonl", nargs="+")
a = ap.parse_args()
{"fit": fit, "predict": predict, "cluster": cluster, "fitcluster": fitcluster}[a.cmd](a)
