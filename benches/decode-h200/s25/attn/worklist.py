# The wgpu engine's decode work list for plans/smollm2-135m-moa-50.toml (session 25, s25-attn):
# per layer the KV segments' spans at N, the chunk the Waves model (overhead 2 tiles) picks
# for W resident workgroups, the items, the slots, the wave's use of W x chunk and the
# shortest last chunk; then the layers' maximum rounds of 128 slots (the 8-subgroup flat
# form's round) with equal chunks against an even spread of a segment's tiles.
#   python3 benches/decode-h200/s25/attn/worklist.py [N] [T] [KEY_TILE] [W]   (4160 4159 64 264)
import re,math,sys,pathlib
root=pathlib.Path(__file__).resolve().parents[4]
txt=(root/'plans'/'smollm2-135m-moa-50.toml').read_text()
layers=re.findall(r'alpha = \[([^\]]*)\]\s*beta = \[([^\]]*)\]',txt)
N=int(sys.argv[1]) if len(sys.argv)>1 else 4160
T=int(sys.argv[2]) if len(sys.argv)>2 else 4159
tile=int(sys.argv[3]) if len(sys.argv)>3 else 64
W=int(sys.argv[4]) if len(sys.argv)>4 else 264
BETA_DEN=4096
def span(a,b):
    bn=round(b*BETA_DEN)
    q,r=divmod(N,BETA_DEN)
    raw=a+bn*q+(bn*r)//BETA_DEN
    s=max(raw,128); s=(s+63)//64*64; return min(s,N)
tot_items=0; out=[]
for li,(a,b) in enumerate(layers):
    al=[int(x) for x in a.split(',')]; be=[float(x) for x in b.split(',')]
    segs=[max(span(al[h],be[h]) for h in range(3*k,3*k+3)) for k in range(3)]
    written=[min(s,T+1) for s in segs]*16
    total=sum(written)
    best=(1e99,tile)
    for m in range(1,65):
        c=tile*m
        items=sum(max(1,-(-w//c)) for w in written)
        cost=math.ceil(items/W)*(c+2*tile)
        if cost<=best[0]: best=(cost,c)
    c=best[1]
    items=sum(max(1,-(-w//c)) for w in written)
    tails=[w-(-(-w//c)-1)*c for w in written]
    out.append((li,segs,c,items,total,total/(W*c) if items<=W else total/(math.ceil(items/W)*W*c),min(tails)))
    tot_items+=items
for o in out: print("L%2d spans %s chunk %4d items %3d slots %6d wave-util %.2f shortest-tail %d"%o)
# even spread comparison: max rounds of 128 slots per layer
tc=te=0
for (li,segs,c,items,total,u,mt) in out:
    written=[min(s,T+1) for s in segs]
    rc=-(-c//128)
    re_=0
    for w in written:
        n=max(1,-(-w//c)); tiles=-(-w//tile); l=-(-tiles//n)*tile; re_=max(re_,-(-l//128))
    tc+=rc; te+=re_
print("sum max rounds: chunk",tc,"even",te)
