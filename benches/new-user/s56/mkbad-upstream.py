#!/usr/bin/env python3
"""Journey C: malformed copies of the upstream Llama-3.2-1B plan (one fault a file).
Usage: mkbad-upstream.py SRC.json OUT_DIR"""
import copy, json, sys, os
src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
d = json.load(open(src))
raw = open(src).read()

def put(name, obj=None, text=None):
    p = os.path.join(out, name + ".json")
    with open(p, "w") as f:
        f.write(text if text is not None else json.dumps(obj))

def edit(name, fn):
    e = copy.deepcopy(d); fn(e); put(name, e)

put("ok", d)
edit("no-alphas", lambda e: e.pop("alphas"))
edit("no-betas", lambda e: e.pop("betas"))
edit("layer-short", lambda e: e["alphas"].pop())
edit("both-layer-short", lambda e: (e["alphas"].pop(), e["betas"].pop()))
edit("head-short", lambda e: e["alphas"][3].pop())
edit("both-head-short", lambda e: (e["alphas"][3].pop(), e["betas"][3].pop()))
edit("empty-layer", lambda e: (e["alphas"].__setitem__(5, []), e["betas"].__setitem__(5, [])))
edit("empty-lists", lambda e: (e.__setitem__("alphas", []), e.__setitem__("betas", [])))
edit("alpha-neg", lambda e: e["alphas"][2].__setitem__(1, -5000))
edit("alpha-neg-huge", lambda e: e["alphas"][2].__setitem__(1, -1e30))
edit("alpha-huge", lambda e: e["alphas"][2].__setitem__(1, 1e30))
edit("alpha-u64", lambda e: e["alphas"][2].__setitem__(1, 18446744073709551616))
edit("alpha-frac", lambda e: e["alphas"][2].__setitem__(1, 3.7))
edit("alpha-string", lambda e: e["alphas"][2].__setitem__(1, "64"))
edit("alpha-null", lambda e: e["alphas"][2].__setitem__(1, None))
edit("beta-neg", lambda e: e["betas"][2].__setitem__(1, -0.5))
edit("beta-over1", lambda e: e["betas"][2].__setitem__(1, 2.5))
edit("beta-huge", lambda e: e["betas"][2].__setitem__(1, 1e308))
edit("beta-tiny", lambda e: e["betas"][2].__setitem__(1, 1e-320))
edit("extra-key", lambda e: e.__setitem__("gammas", [[1]]))
e = copy.deepcopy(d); e["alphas"][2][1] = float("nan"); put("alpha-nan", e)
e = copy.deepcopy(d); e["betas"][2][1] = float("inf"); put("beta-inf", e)
e = copy.deepcopy(d); e["betas"][2][1] = float("nan"); put("beta-nan", e)
put("toplevel-list", [d["alphas"], d["betas"]])
put("empty", text="")
put("bom", text="\ufeff" + raw)
put("crlf", text=raw.replace("\n", "\r\n"))
put("trailing-garbage", text=raw + "xyz")
put("cut", text=raw[: len(raw) // 2])
e = copy.deepcopy(d); e["alphas"] = [[[a] for a in l] for l in e["alphas"]]; put("nested", e)
e = {"alphas": [[0.0] * 32 for _ in range(1000)], "betas": [[1.0] * 32 for _ in range(1000)]}; put("1000-layers", e)
e = {"alphas": [[0.0] * 4096 for _ in range(2)], "betas": [[1.0] * 4096 for _ in range(2)]}; put("4096-heads", e)
