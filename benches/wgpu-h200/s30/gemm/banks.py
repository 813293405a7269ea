# Session 30, s30-gemm: the bank model of coop_linear.wgsl's staging stores (wavefronts a
# warp needs to store one 16-byte word a thread, 80-byte rows): python3 banks.py
# wavefronts of the staging stores of one warp-instruction set, coop_linear.wgsl's mapping
import itertools
KP=40  # halves per row
def words_of(xe):  # thread -> (row, first half) for words of xe elements (8 halves for f16, 4 f32 -> 4 halves)
    per_row = 32//xe   # KS=32
    return [(i//per_row, (i%per_row)*xe) for i in range(32)]
def wavefronts(addrs, width):
    # addrs: byte addresses of one warp instruction, width bytes each
    if width <= 4: groups=[range(32)]
    elif width == 8: groups=[range(0,16),range(16,32)]
    else: groups=[range(i,i+8) for i in range(0,32,8)]
    tot=0
    for g in groups:
        banks={}
        for t in g:
            for b in range(addrs[t], addrs[t]+max(width,4), 4):
                w=b//4; banks.setdefault(w%32,set()).add(w)
        tot+=max(len(s) for s in banks.values())
    return tot
for xe,name in [(8,'f16 word (w, f16 x)'),(4,'f32 x word')]:
    m=words_of(xe)
    for sv in [1,2,4]:
        halves_per_store=sv
        n=xe//sv
        for rot in ['none','lane','row']:
            tot=0
            for step in range(n):
                addrs=[]
                for t,(r,h) in enumerate(m):
                    q={'none':step,'lane':(step+t)%n,'row':(step+r)%n}[rot]
                    addrs.append(2*(r*KP+h+q*sv))
                tot+=wavefronts(addrs, 2*sv)
            print(f"{name:22s} SV {sv} rot {rot:5s}: {n} stores, {tot} wavefronts a warp-word-set (ideal {max(1,32*2*xe//128)})")
