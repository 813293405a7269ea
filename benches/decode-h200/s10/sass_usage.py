#!/usr/bin/env python3
"""Registers of the Vulkan pipelines the NVIDIA driver compiled, where its disk cache holds
them as ELF (cubin) images: carves every ELF out of the files under DIR and prints
`cuobjdump --dump-resource-usage` of each (the driver's cache format is not documented;
if it is compressed, this prints nothing useful and says so).

usage: sass_usage.py DIR OUTDIR
"""
import os
import struct
import subprocess
import sys

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
n = 0
files = 0
for root, _, names in os.walk(src):
    for name in names:
        files += 1
        data = open(os.path.join(root, name), "rb").read()
        i = data.find(b"\x7fELF")
        while i >= 0:
            # ELF64 header: e_shoff at 0x28, e_shentsize 0x3a, e_shnum 0x3c.
            if i + 64 <= len(data) and data[i + 4] == 2:
                shoff = struct.unpack_from("<Q", data, i + 0x28)[0]
                shent, shnum = struct.unpack_from("<HH", data, i + 0x3A)
                end = i + shoff + shent * shnum
                if shoff and end <= len(data):
                    path = os.path.join(out, f"blob{n}.cubin")
                    open(path, "wb").write(data[i:end])
                    n += 1
            i = data.find(b"\x7fELF", i + 4)
print(f"{files} cache files, {n} ELF images")
for k in range(n):
    path = os.path.join(out, f"blob{k}.cubin")
    r = subprocess.run(["cuobjdump", "--dump-resource-usage", path], capture_output=True, text=True)
    text = (r.stdout + r.stderr).strip()
    print(f"--- blob{k} ({os.path.getsize(path)} B)")
    print("\n".join(l for l in text.splitlines() if "Function" in l or "REG" in l or "rror" in l)[:2000])
