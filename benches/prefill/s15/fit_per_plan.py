"""Session 12's fit (kernel time = F * blocks / 132 + c * tiles / 132) per plan and length on
the former default's rows: Vicuna-7B (MHA) 1.63 us per tile against Llama-3-8B's 1.43.

    python3 benches/prefill/s15/fit_per_plan.py benches/prefill/s13/prefill-call2/ab4k.jsonl.gz \\
        benches/prefill/s13/prefill-call2/ab16k.jsonl.gz
"""
import json, gzip, sys

sys.path.insert(0, __import__('os').path.dirname(__file__))
from tiles_model import count
rows = {}
for f in sys.argv[1:]:
    for l in gzip.open(f, 'rt'):
        r = json.loads(l)
        if r['variant'] != '3x64x1owghvunc': continue
        rows.setdefault((r['plan'], r['prompt'], r['rows'], r['layer']), []).append(r)
for plan in ('vicuna7b', 'llama3_8b'):
  for L in (4096, 16384, None):
    A = []; y = []
    for k, rs in rows.items():
        if k[0] != plan or (L and k[1] != L): continue
        r = rs[0]
        t, nb = count(k[1], r['heads_sink_window'], k[2], False)
        A.append([nb/132, t/132]); y.append(1000*(lambda v: sorted(v)[len(v)//2])([x['moa_ms'] - x['prepass_ms'] for x in rs]))
    # 2x2 normal equations
    a=sum(x[0]*x[0] for x in A); b=sum(x[0]*x[1] for x in A); d=sum(x[1]*x[1] for x in A)
    e=sum(x[0]*v for x,v in zip(A,y)); f=sum(x[1]*v for x,v in zip(A,y))
    det=a*d-b*b; Fv=(d*e-b*f)/det; cv=(a*f-b*e)/det
    res=[v/(Fv*x[0]+cv*x[1]) for x,v in zip(A,y)]
    print(plan, L, 'F %.2f us/block, c %.3f us/tile' % (Fv,cv), 'resid %.3f-%.3f' % (min(res), max(res)))
