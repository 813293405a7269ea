#!/usr/bin/env python3
"""Reads a moa-compile output folder as an app would, from docs/EMBEDDING.md alone, and
says where the folder disagrees with the page. Usage: read_manifest.py OUT [N]"""
import hashlib, json, math, os, re, sys

out = sys.argv[1]
m = json.load(open(os.path.join(out, "manifest.json")))
problems = []
def bad(msg):
    problems.append(msg)

top = ["manifest_version", "moa_version", "model", "span", "storage", "targets", "cache_layout", "files"]
if list(m) != top:
    bad(f"top-level keys {list(m)} != documented {top}")
if m["manifest_version"] != 4:
    bad(f"manifest_version {m['manifest_version']}")
if not re.fullmatch(r"0\.1\.0\+(git\.[0-9a-f]{40}(\.modified)?|no-git)", m["moa_version"]):
    bad(f"moa_version {m['moa_version']!r}")
model, span = m["model"], m["span"]
for k in ["layers", "q_heads", "kv_heads", "head_dim", "max_context_tokens", "name"]:
    if k not in model:
        bad(f"model.{k} missing")
for k in ["sink_tokens", "min_span_tokens", "span_round_tokens", "mode"]:
    if k not in span:
        bad(f"span.{k} missing")

# Files: every entry's bytes and sha256, and the documented names.
listed = set()
for f in m["files"]:
    p = os.path.join(out, f["path"])
    data = open(p, "rb").read()
    listed.add(f["path"])
    if len(data) != f["bytes"]:
        bad(f"{f['path']}: {len(data)} bytes, manifest says {f['bytes']}")
    if hashlib.sha256(data).hexdigest() != f["sha256"]:
        bad(f"{f['path']}: sha256 differs")
    ok = re.fullmatch(r"wgsl/(l\d\d_(prefill|decode|decode_coop)|decode_merge)\.wgsl|cuda/l\d\d\.cu", f["path"])
    if not ok:
        bad(f"{f['path']}: a file name EMBEDDING.md does not describe")
on_disk = set()
for sub in ["wgsl", "cuda"]:
    d = os.path.join(out, sub)
    if os.path.isdir(d):
        on_disk |= {f"{sub}/{n}" for n in os.listdir(d)}
if on_disk != listed:
    bad(f"files on disk but not listed: {sorted(on_disk - listed)}; listed but absent: {sorted(listed - on_disk)}")
krs = open(os.path.join(out, "kernels.rs")).read()
for path in listed:
    if f'"{path}"' not in krs:
        bad(f"kernels.rs does not name {path}")

rules = {"query_tiles", "heads_then_query_tiles", "work_items", "query_heads",
         "persistent_query_tiles", "token_groups", "strided_token_groups"}
args = {"q", "k", "v", "row_start", "out", "k_cache", "v_cache", "row_pos", "work", "partials",
        "seg_done", "v_f16", "v_max", "params", "n_tokens", "rows", "n_items", "pad", "rules"}
accesses = {"read", "read_write", "uniform", "value"}
elems = {"f32", "f16", "bf16", "u32"}
n_kernels = 0
named = set()
for f in m["files"]:
    src = open(os.path.join(out, f["path"])).read()
    for k in f["kernels"]:
        n_kernels += 1
        for key in ["name", "target", "phase", "entry_point", "constants", "abi"]:
            if key not in k:
                bad(f"{f['path']}: kernel without `{key}`")
        if k["phase"] not in ("prefill", "decode", "decode_merge"):
            bad(f"{k['name']}: phase {k['phase']}")
        if k["phase"] != "decode_merge" and "layer" not in k:
            bad(f"{k['name']}: no layer")
        abi = k["abi"]
        if abi["grid"]["rule"] not in rules:
            bad(f"{k['name']}: grid rule {abi['grid']['rule']}")
        for prm in abi["params"]:
            if prm["arg"] not in args:
                bad(f"{k['name']}: arg {prm['arg']}")
            if prm["access"] not in accesses:
                bad(f"{k['name']}: access {prm['access']}")
            if prm["elem"] not in elems:
                bad(f"{k['name']}: elem {prm['elem']}")
        if k["target"] == "wgsl":
            if m["storage"] == "f16" and not src.startswith("enable f16;"):
                bad(f"{f['path']}: f16 module without `enable f16;` first")
            ws = re.search(r"@compute\s+@workgroup_size\(([^)]*)\)\s*fn\s+" + re.escape(k["entry_point"]) + r"\b", src)
            if not ws:
                bad(f"{f['path']}: no compute entry point {k['entry_point']}")
            else:
                dims = [d.strip() for d in ws.group(1).split(",") if d.strip()]
                dims += ["1"] * (3 - len(dims))
                if all(d.isdigit() for d in dims) and [int(d) for d in dims] != abi["block"]:
                    bad(f"{f['path']}: @workgroup_size({ws.group(1)}) but block {abi['block']}")
                elif not all(d.isdigit() for d in dims):
                    named.add(ws.group(1))
            binds = {int(b): (sp, n) for b, sp, n in re.findall(r"@group\(0\)\s*@binding\((\d+)\)\s*var(<[^>]*>)?\s*(\w+)", src)}
            for prm in abi["params"]:
                got = binds.get(prm["index"])
                if got is None:
                    bad(f"{f['path']}: binding {prm['index']} ({prm['arg']}) not in the source")
                    continue
                sp = got[0] or ""
                want = {"read": "storage, read>", "read_write": "storage, read_write>", "uniform": "uniform>"}[prm["access"]]
                if not sp.replace(" ", "").endswith(want.replace(" ", "")):
                    bad(f"{f['path']}: binding {prm['index']} is var{sp}, manifest says {prm['access']}")
            if len(binds) != len(abi["params"]):
                bad(f"{f['path']}: {len(binds)} bindings in the source, {len(abi['params'])} params")
        else:
            mm = re.search(r'extern\s+"C"[^{;]*?__global__[^{;]*?\b' + re.escape(k["entry_point"]) + r"\s*\(([^)]*)\)", src, re.S)
            if not mm:
                mm = re.search(r"__global__[^{;]*?\b" + re.escape(k["entry_point"]) + r"\s*\(([^)]*)\)", src, re.S)
                if mm and 'extern "C"' not in src:
                    bad(f"{f['path']}: {k['entry_point']} not extern \"C\"")
            if not mm:
                bad(f"{f['path']}: no __global__ {k['entry_point']}")
            else:
                n = len([a for a in mm.group(1).split(",") if a.strip()])
                if n != len(abi["params"]):
                    bad(f"{f['path']}: {k['entry_point']} takes {n} parameters, manifest lists {len(abi['params'])}")
            for pre in (abi.get("prepass") or {}).get("launches", []):
                if not re.search(r"__global__[^{;]*?\b" + re.escape(pre["entry_point"]) + r"\s*\(", src):
                    bad(f"{f['path']}: prepass {pre['entry_point']} not in the source")

# cache_layout: recompute the segments at max context from the rules, as the page says.
def segs(layer, N):
    mn, rnd, sink = span["min_span_tokens"], span["span_round_tokens"], span["sink_tokens"]
    spans = [0] * model["kv_heads"]
    for qh in layer["q_heads"]:
        r = qh["rule"]
        raw = r["alpha"] + (r["beta_num"] * N) // 4096
        ru = lambda x: -(-x // rnd) * rnd
        s = min(N, ru(max(raw, mn))) if span["mode"] == "moa" else ru(max(min(raw, N), mn))
        spans[qh["kv_head"]] = max(spans[qh["kv_head"]], s)
    out, off = [], 0
    for s in spans:
        sk = min(s, sink)
        out.append({"offset": off, "span": s, "sink": sk, "ring": s - sk})
        off += s
    return out, off
cl = m["cache_layout"]
N = model["max_context_tokens"]
for l, (layer, at) in enumerate(zip(cl["layers"], cl["at_max_context"])):
    if at["n_tokens"] != N:
        bad(f"at_max_context[{l}].n_tokens {at['n_tokens']} != {N}")
    s, total = segs(layer, N)
    if s != at["segments"] or total != at["row_slots"]:
        bad(f"layer {l}: segments at N={N} recomputed from the page's rule differ: {s[:2]}… vs {at['segments'][:2]}…")
if len(cl["layers"]) != model["layers"]:
    bad(f"{len(cl['layers'])} cache layers for {model['layers']} model layers")
if named:
    print(f"  note: workgroup sizes by name (not checked against block): {sorted(named)}")
print(f"{out}: {len(m['files'])} files, {n_kernels} kernels, storage {m['storage']}, targets {m['targets']}")
for p in problems:
    print("  PROBLEM:", p)
sys.exit(1 if problems else 0)
