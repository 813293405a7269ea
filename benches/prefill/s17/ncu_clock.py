#!/usr/bin/env python3
"""One line per profiled kernel from `ncu --import REP --page raw --csv`, labelled with the
(plan, layer, variant) of the `bench_prefill --reps 1 --warmups 0` run that launched them
(its JSON lines, in launch order): duration, SM clock, elapsed cycles, DRAM bytes read and
their rate, L2 hit rate and L2 sector throughput. Session 16 found the MHA premium in the
clock (1.62 against 1.74 GHz under 2.97 TB/s of DRAM reads); this prints what a launch
order changes there.

    python3 ncu_clock.py raw.csv bench.jsonl > ncu_clock.md
"""
import csv
import json
import sys

rows = list(csv.reader(open(sys.argv[1], newline="")))
head, units, data = rows[0], rows[1], rows[2:]
runs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
col = {n: i for i, n in enumerate(head)}
SCALE = {"ns": 1e-9, "nsecond": 1e-9, "us": 1e-6, "usecond": 1e-6, "ms": 1e-3, "msecond": 1e-3,
         "byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "Tbyte": 1e12,
         "byte/second": 1, "Kbyte/s": 1e3, "Mbyte/s": 1e6, "Gbyte/s": 1e9, "Tbyte/s": 1e12,
         "hz": 1, "Khz": 1e3, "Mhz": 1e6, "Ghz": 1e9, "cycle/second": 1, "cycle/nsecond": 1e9,
         "cycle/usecond": 1e6, "cycle": 1, "Kcycle": 1e3, "Mcycle": 1e6, "%": 1}


def get(r, name):
    if name not in col:
        return None
    try:
        v = float(r[col[name]].replace(",", ""))
    except ValueError:
        return None
    return v * SCALE.get(units[col[name]], 1)


print("| plan | prompt x rows | layer | variant | ms | SM clock GHz | elapsed cycles M | DRAM read GB | DRAM TB/s | L2 hit % | L2 sectors % of peak |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for i, r in enumerate(data):
    run = runs[i] if i < len(runs) else {}
    t = get(r, "gpu__time_duration.sum")
    clk = get(r, "gpc__cycles_elapsed.avg.per_second")
    cyc = get(r, "gpc__cycles_elapsed.max")
    rd = get(r, "dram__bytes_read.sum")
    rate = get(r, "dram__bytes.sum.per_second")
    hit = get(r, "lts__t_sector_hit_rate.pct")
    l2 = get(r, "lts__t_sectors.avg.pct_of_peak_sustained_elapsed")
    f = lambda v, s, d: "–" if v is None else f"{v * s:.{d}f}"
    print(f"| {run.get('plan', '?')} | {run.get('prompt', '?')} x {run.get('rows', '?')} | {run.get('layer', '?')} | {run.get('variant', '?')} | "
          f"{f(t, 1e3, 3)} | {f(clk, 1e-9, 3)} | {f(cyc, 1e-6, 3)} | {f(rd, 1e-9, 2)} | {f(rate, 1e-12, 2)} | {f(hit, 1, 1)} | {f(l2, 1, 1)} |")
