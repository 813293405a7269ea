# Session 30, s30-gemm: picks the staging for the engine runs of call1.sh from
# `wgpu_products --gemm`'s A B B A lines: each staging's time ratio (B B over A A) per
# product as the engine runs it (qkv and down f32 x, out f16 x, gate_up = SwiGLU in the
# product), weighted by the product's ms a prefill pass (session 29: qkv 14.7, out 12.8,
# gate_up 39.9, down 22.6); prints "SV,ROT" of the lowest weighted sum, and the table.
#   python3 pick.py gemm.txt
import re, sys
w = {"qkv": 14.7, "out": 12.8, "gate_up": 39.9, "down": 22.6}
engine = {"qkv": "residual false, x f16 false", "out": "residual true, x f16 true",
          "down": "residual true, x f16 false"}
ratios = {}
for line in open(sys.argv[1]):
    m = re.match(r"gemm (\w+) M \d+ N \d+ K \d+ \((.*?)\): (.*)", line)
    if not m:
        continue
    what, label, runs = m.groups()
    t = re.findall(r"(\w[\w-]*) ([0-9.]+) ms", runs)
    if len(t) != 4 or not re.fullmatch(r"s\d\d", t[1][0]):
        continue
    ok = (what == "gate_up" and label == "SwiGLU in the product, staging") or engine.get(what) == label
    if ok:
        a = float(t[0][1]) + float(t[3][1]); b = float(t[1][1]) + float(t[2][1])
        ratios.setdefault(t[1][0], {})[what] = b / a
best, best_ms = None, None
base = sum(w.values())
for v, r in sorted(ratios.items()):
    if len(r) < 4:
        continue
    ms = sum(w[p] * r[p] for p in w)
    print(f"# {v}: " + " ".join(f"{p} {r[p]:.3f}" for p in w) + f"; products {base:.1f} -> {ms:.1f} ms a pass", file=sys.stderr)
    if best_ms is None or ms < best_ms:
        best, best_ms = v, ms
print(f"{best[1]},{best[2]}" if best else "2,2")
