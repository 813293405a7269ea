#!/usr/bin/env python3
"""Registers per kernel of cubins (EIATTR_REGCOUNT records of the .nv.info section).
Usage: regs.py CUBIN... ; prints `regs kernel cubin` for every decode kernel."""
import struct, sys

def sections(b):
    shoff, = struct.unpack_from("<Q", b, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", b, 0x3A)
    hs = [struct.unpack_from("<IIQQQQIIQQ", b, shoff + i * shentsize) for i in range(shnum)]
    stro = hs[shstrndx][4]
    name = lambda o: b[stro + o: b.index(b"\0", stro + o)].decode()
    return [(name(h[0]), h[4], h[5]) for h in hs]

def symbols(b):
    out = {}
    secs = sections(b)
    shoff, = struct.unpack_from("<Q", b, 0x28)
    shentsize, = struct.unpack_from("<H", b, 0x3A)
    for i, (name, off, size) in enumerate(secs):
        if name != ".symtab":
            continue
        link, = struct.unpack_from("<I", b, shoff + i * shentsize + 40)
        stro = secs[link][1]
        for k in range(size // 24):
            st_name, = struct.unpack_from("<I", b, off + 24 * k)
            out[k] = b[stro + st_name: b.index(b"\0", stro + st_name)].decode()
    return out


for path in sys.argv[1:]:
    b = open(path, "rb").read()
    syms = symbols(b)
    for name, off, size in sections(b):
        if name != ".nv.info":
            continue
        p = off
        while p + 4 <= off + size:
            fmt, attr, sz = b[p], b[p + 1], struct.unpack_from("<H", b, p + 2)[0]
            if fmt == 0x04:
                if attr == 0x2F:
                    sym, regs = struct.unpack_from("<II", b, p + 4)
                    print(regs, syms.get(sym, sym), path)
                p += 4 + sz
            else:
                p += 4 if fmt in (0x01, 0x02, 0x03) else 4 + sz
