#!/usr/bin/env python3
"""Session 30 (s30-i8): session 28's patch plus a per-block timeline on the GPU's global
clock (%globaltimer, ns) for *every* block of the launch: 30 the producer's start, 31 each
query tile claimed (at the producer's bar.sync 6, x = the block's tile index j), 32 the
producer's end (its last claim saw the end), 33 each consumer warpgroup's exit (its loop saw
the end mark; x = the number of query tiles it ran). PFT_BLOCKS is 256 (>= the grid of 132),
the detailed clock64 events stay on blocks 0-2. `tail_report.py` reads 30-33.

Instruments `t`'s kernel (the persistent prefill body, sm_90a) with a clock64 trace, for
`cuda_cubins --edit` (session 23's benches/prefill/s23/trace_patch.py; session 25 adds events
13 and 14 and takes `P`'s source too; session 26 takes `R`'s: 13 at its Q tile's release,
the epilogue's start after 1/l, and 9 after its stores, before `d`'s band-end releases;
session 28 takes `N`'s producer: 20 at `take_next`'s barrier, 21 after its Q copy, both
with the next tile's index, 22 after thread 0's `claim_next`, 24 after `land()`). Reads a generated module's source on stdin, writes it
on stdout with trace points added; a source without `t`'s body passes through unchanged.

One thread of each role (lane 0 of each consumer warpgroup's first warp, the producer's
thread 0) of blocks 0 .. PFT_BLOCKS - 1 appends (event << 56 | x << 40 | clock64's low 40
bits) to its own list in a module array during the module's second launch of this kernel
(launch 1; the block that ends a launch last counts launches); `bench_prefill --trace-out`
reads the arrays `pft_cnt` and `pft_buf` back after its runs (printf in the kernel made
ptxas serialize every wgmma, C7510). clock64 counts the block's SM's cycles, so the four
roles of a block share one clock. `trace_report.py` reads the file.

Events (x in parentheses), consumers: 1 tile start, after qfull and the geometry (nj);
11 section 0's tile landed (position - rb); 2 section 0's turn (position - rb); 12 the band
start's releases done; 3 a section's tile landed, 4 its turn (position - rb); 6 the last
section's turn; 7 its P·V complete (buffer released); 8 the last warpgroup's hand-over to
the next tile; 13 the output staged (after stmatrix); 9 the output written (qempty; with
`P` the same place as 13: the copy waits); 14 (`P`) the previous tile's output copied
out and released (e9ac87f: after section 0's turn; later: before section 0's tile wait); 10 the band end's releases done. Producer:
20 the next tile claimed (j); 21 its Q copies issued; 23 a ring slot free (tile index in
the query tile); 24 a K/V tile issued and the one before handed over (tile index).
"""
import sys

src = sys.stdin.read()
head = 'extern "C" __global__ void __launch_bounds__(PREFILL_THREADS, 1)\nmoa_prefill_'
k = src.find(head)
if k < 0 or "pf_item_next" not in src or "own_range(wg, lo, hi);\n    release(hi, n_tiles);" not in src:
    sys.stdout.write(src)
    sys.exit(0)
end = src.find("\n#else", k)
body = src[k:end]

decl = r"""
#define PFT_BLOCKS 256
#define PFT_DETAIL 3
#define PFT_N 2048
__device__ unsigned long long pft_buf[PFT_BLOCKS][4][PFT_N];
__device__ unsigned pft_cnt[PFT_BLOCKS][4];
__device__ unsigned pft_launch;
#define PFT(E_, X_)                                                                                     \
    do {                                                                                                 \
        if (pft_me) {                                                                                    \
            long long c_;                                                                                \
            asm volatile("mov.u64 %0, %%clock64;\n" : "=l"(c_)::"memory");                              \
            const unsigned i_ = pft_n++;                                                                 \
            if (i_ < PFT_N)                                                                              \
                pft_buf[blockIdx.x][pft_r][i_] = ((unsigned long long)(E_) << 56) |                      \
                    ((unsigned long long)((X_) & 0xFFFFu) << 40) | ((unsigned long long)c_ & 0xFFFFFFFFFFull); \
            pft_cnt[blockIdx.x][pft_r] = pft_n;                                                          \
        }                                                                                                \
    } while (0)
#define PFTG(E_, X_)                                                                                    \
    do {                                                                                                 \
        if (pft_all) {                                                                                   \
            unsigned long long c_;                                                                       \
            asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(c_)::"memory");                           \
            const unsigned i_ = pft_n++;                                                                 \
            if (i_ < PFT_N)                                                                              \
                pft_buf[blockIdx.x][pft_r][i_] = ((unsigned long long)(E_) << 56) |                      \
                    ((unsigned long long)((X_) & 0xFFFFu) << 40) | (c_ & 0xFFFFFFFFFFull);               \
            pft_cnt[blockIdx.x][pft_r] = pft_n;                                                          \
        }                                                                                                \
    } while (0)
"""


def sub(old, new, count=1):
    global body
    n = body.count(old)
    if n != count:
        sys.exit(f"trace_patch: {n} matches (want {count}) of: {old!r}")
    body = body.replace(old, new)


PARK = "out_copy((nj + 1) % 2);" in body
DIRECT = "make_uint4(w[0], w[1], w[2], w[3])" in body


# Who records: set after wg is known.
sub("    const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);\n",
    "    const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);\n"
    "    const unsigned pft_l = *(volatile unsigned*)&pft_launch;\n"
    "    const bool pft_me = pft_l == 1 && blockIdx.x < PFT_DETAIL && tid % 128 == 0;\n"
    "    const bool pft_all = pft_l == 1 && blockIdx.x < PFT_BLOCKS && tid % 128 == 0;\n"
    "    const int pft_r = wg;\n"
    "    unsigned pft_n = 0;\n")
# Producer.
NEXT = "auto take_next = [&](unsigned jn)" in body
if NEXT:
    sub('            asm volatile("bar.sync 6, 128;\\n" ::: "memory");\n',
        '            asm volatile("bar.sync 6, 128;\\n" ::: "memory");\n            PFT(20, jn);\n')
    sub("            load_q(qs0 + sl * PF_Q_BYTES);\n",
        "            load_q(qs0 + sl * PF_Q_BYTES);\n            PFT(21, jn);\n")
    sub("                        claim_next(j + 1);\n",
        "                        claim_next(j + 1);\n                        PFT(22, j + 1);\n")
    sub("                land();\n                pend = full + (pos % WS_STAGES) * 8;\n",
        "                land();\n                PFT(24, it);\n                pend = full + (pos % WS_STAGES) * 8;\n")
else:
    sub('            asm volatile("bar.sync 6, 128;\\n" ::: "memory");\n',
        '            asm volatile("bar.sync 6, 128;\\n" ::: "memory");\n            PFT(20, j);\n            PFTG(31, j);\n')
    sub("            load_q(qs0 + slot * PF_Q_BYTES);\n",
        "            load_q(qs0 + slot * PF_Q_BYTES);\n            PFT(21, j);\n")
    sub("                hand_over();\n                pend = full + (pos % WS_STAGES) * 8;\n",
        "                hand_over();\n                PFT(24, it);\n                pend = full + (pos % WS_STAGES) * 8;\n")
sub("                    mb_wait(eb, ep);\n                }\n",
    "                    mb_wait(eb, ep);\n                    PFT(23, it);\n                }\n")
sub("        const unsigned n_items = Q_HEADS * rows * n_z;\n",
    "        const unsigned n_items = Q_HEADS * rows * n_z;\n        PFTG(30, 0);\n")
sub("        // Every block ends here once; the last resets the counter for the next launch.\n",
    "        PFTG(32, 0);\n        // Every block ends here once; the last resets the counter for the next launch.\n")
sub("            if (atomicAdd(&pf_item_done, 1u) == gridDim.x - 1) {\n",
    "            if (atomicAdd(&pf_item_done, 1u) == gridDim.x - 1) {\n"
    "                atomicAdd(&pft_launch, 1u);\n")
# Consumers.
if PARK:
    sub("        break;\n    }\n    item_at(nj % 2);\n", "        break;\n    }\n    item_at(nj % 2);\n    PFT(1, nj);\n")
    if "    if (nj > 0) out_copy((nj + 1) % 2);\n    wg_wait();\n" in body:  # e9ac87f's form
        sub("    if (nj > 0) out_copy((nj + 1) % 2);\n    wg_wait();\n",
            "    if (nj > 0) out_copy((nj + 1) % 2);\n    PFT(14, nj);\n    wg_wait();\n")
    else:
        sub("    if (nj > 0) out_copy((nj + 1) % 2);\n    // Section 0:", "    if (nj > 0) out_copy((nj + 1) % 2);\n    PFT(14, nj);\n    // Section 0:")
    sub("    // (`out_copy`).\n", "    // (`out_copy`).\n    PFT(13, nj);\n    PFT(9, nj);\n")
else:
    sub("    if (w_item == PF_NO_ITEM) break;\n    item_at(nj % 2);\n",
        "    if (w_item == PF_NO_ITEM) {\n        PFTG(33, nj);\n        break;\n    }\n    item_at(nj % 2);\n    PFT(1, nj);\n")
    if not DIRECT:
        sub("    __syncwarp();\n    // `b`: lane l copies", "    PFT(13, nj);\n    __syncwarp();\n    // `b`: lane l copies")
sub("    if (sink_tiles == 0) release(0, lo);\n    const unsigned p0 = p_base + (sink_tiles > 0 ? 0u : lo);\n"
    "    mb_wait(full + p0 % WS_STAGES * 8, p0 / WS_STAGES & 1);\n    turn_wait();\n",
    "    if (sink_tiles == 0) release(0, lo);\n    const unsigned p0 = p_base + (sink_tiles > 0 ? 0u : lo);\n"
    "    mb_wait(full + p0 % WS_STAGES * 8, p0 / WS_STAGES & 1);\n    PFT(11, p0 - p_base);\n    turn_wait();\n"
    "    PFT(2, p0 - p_base);\n")
sub("        mb_wait(full + (it % WS_STAGES) * 8, (it / WS_STAGES) & 1);\n        turn_wait();\n        wg_fence();\n"
    "        pp_qk(it);\n        wg_commit();\n        ov_pv(prev);\n",
    "        mb_wait(full + (it % WS_STAGES) * 8, (it / WS_STAGES) & 1);\n        PFT(3, it - p_base);\n        turn_wait();\n"
    "        PFT(4, it - p_base);\n        wg_fence();\n        pp_qk(it);\n        wg_commit();\n        ov_pv(prev);\n")
sub("    if (sink_tiles > 0) release(sink_tiles, lo);\n",
    "    if (sink_tiles > 0) release(sink_tiles, lo);\n    PFT(12, lo);\n")
sub("    // Last section: P·V of the last own tile.\n    turn_wait();\n",
    "    // Last section: P·V of the last own tile.\n    turn_wait();\n    PFT(6, prev - p_base);\n")
sub("    mb_arrive(empty + (prev % WS_STAGES) * 8);\n    // The last warpgroup's last turn",
    "    mb_arrive(empty + (prev % WS_STAGES) * 8);\n    PFT(7, prev - p_base);\n    // The last warpgroup's last turn")
sub("        if (w_next != PF_NO_ITEM) turn_pass();\n",
    "        if (w_next != PF_NO_ITEM) turn_pass();\n        PFT(8, nj);\n")
if DIRECT:
    sub("    mb_arrive(qempty + (nj % 2) * 8);\n", "    mb_arrive(qempty + (nj % 2) * 8);\n    PFT(13, nj);\n")
    sub("    // `d`: the band positions past this warpgroup's own, released (the geometry is the\n",
        "    PFT(9, nj);\n    // `d`: the band positions past this warpgroup's own, released (the geometry is the\n")
elif not PARK:
    sub("    mb_arrive(qempty + (nj % 2) * 8);\n", "    mb_arrive(qempty + (nj % 2) * 8);\n    PFT(9, nj);\n")
sub("    own_range(wg, lo, hi);\n    release(hi, n_tiles);\n",
    "    own_range(wg, lo, hi);\n    release(hi, n_tiles);\n    PFT(10, hi);\n")

sys.stdout.write(src[:k] + decl + body + src[end:])
