#!/usr/bin/env python3
"""One line per profiled prefill kernel from `ncu --import REP --page raw --csv`, labelled
with the (plan, layer, variant) of the `bench_prefill --reps 1 --warmups 0` run that
launched them (its JSON lines, in launch order): duration, SM and tensor-pipe utilisation,
issue activity, achieved occupancy, DRAM and L2 bytes, and the largest stall reasons.

    python3 ncu_summary.py raw.csv bench.jsonl > ncu_summary.md
"""

import csv
import json
import re
import sys


def num(x):
    try:
        return float(str(x).replace(",", ""))
    except ValueError:
        return None


def main():
    raw, bench = sys.argv[1], sys.argv[2]
    with open(raw, newline="") as f:
        rows = list(csv.reader(f))
    # Header, then a row of units, then one row per kernel.
    head, units, data = rows[0], rows[1], rows[2:]
    runs = [json.loads(line) for line in open(bench) if line.strip()]
    col = {name: i for i, name in enumerate(head)}

    def first(*patterns):
        for p in patterns:
            for name in head:
                if re.fullmatch(p, name):
                    return name
        return None

    cols = [
        ("ms", first(r"gpu__time_duration\.sum"), 1e-6 if "ns" in units[col.get("gpu__time_duration.sum", 0)] else 1e-3),
        ("SM %", first(r"sm__throughput\.avg\.pct_of_peak_sustained_elapsed"), 1),
        ("tensor pipe active % (gmma cycles)", first(r"sm__pipe_tensor_op_gmma_cycles_active\.avg\.pct_of_peak_sustained_active",
                                  r"sm__pipe_tensor.*gmma.*pct_of_peak_sustained_active"), 1),
        ("tensor pipe active % (hmma cycles)", first(r"sm__pipe_tensor_op_hmma_cycles_active\.avg\.pct_of_peak_sustained_active",
                                  r"sm__inst_executed_pipe_tensor.*pct_of_peak_sustained_active"), 1),
        ("issue active %", first(r"sm__inst_issued\.avg\.pct_of_peak_sustained_active",
                                 r"smsp__issue_active\.avg\.pct_of_peak_sustained_active"), 1),
        ("occupancy %", first(r"sm__warps_active\.avg\.pct_of_peak_sustained_active"), 1),
        ("DRAM GB/s", first(r"dram__bytes\.sum\.per_second"), 1),
        ("L2 sectors % of peak", first(r"lts__t_sectors\.avg\.pct_of_peak_sustained_elapsed"), 1),
        ("L2 hit %", first(r"lts__t_sector_hit_rate\.pct"), 1),
        ("L1 LSU wavefronts %", first(r"l1tex__data_pipe_lsu_wavefronts\.avg\.pct_of_peak_sustained_elapsed",
                                      r"l1tex__throughput\.avg\.pct_of_peak_sustained_active"), 1),
    ]
    stall_cols = [n for n in head if re.fullmatch(r"smsp__average_warps_issue_stalled_(.+)_per_issue_active\.ratio", n)]
    print("| plan | layer | variant | kept share | " + " | ".join(c[0] for c in cols) + " | largest stalls (warps per issue) |")
    print("|---|---|---|---|" + "---|" * len(cols) + "---|")
    for i, r in enumerate(data):
        run = runs[i] if i < len(runs) else {}
        cells = []
        for label, name, scale in cols:
            if name is None:
                cells.append("–")
                continue
            v = num(r[col[name]])
            u = units[col[name]]
            if v is None:
                cells.append("–")
            elif label == "ms":
                cells.append(f"{v * {'ns': 1e-6, 'us': 1e-3, 'usecond': 1e-3, 'nsecond': 1e-6, 'ms': 1, 'msecond': 1}.get(u, 1e-6):.3f}")
            elif label.startswith("DRAM"):
                f = {"byte/second": 1e-9, "Kbyte/s": 1e-6, "Mbyte/s": 1e-3, "Gbyte/s": 1, "Tbyte/s": 1e3}.get(u, 1)
                cells.append(f"{v * f:.0f}")
            else:
                cells.append(f"{v:.1f}")
        stalls = []
        for n in stall_cols:
            v = num(r[col[n]])
            if v:
                stalls.append((v, re.fullmatch(r"smsp__average_warps_issue_stalled_(.+)_per_issue_active\.ratio", n).group(1)))
        stalls.sort(reverse=True)
        st = ", ".join(f"{name} {v:.2f}" for v, name in stalls[:5])
        print(f"| {run.get('plan', '?')} | {run.get('layer', '?')} | {run.get('variant', '?')} | "
              f"{run.get('kept_share', 0):.3f} | " + " | ".join(cells) + f" | {st} |")
    print(f"\n{len(data)} kernels; units: {[(c[0], units[col[c[1]]]) for c in cols if c[1]]}")


if __name__ == "__main__":
    main()
