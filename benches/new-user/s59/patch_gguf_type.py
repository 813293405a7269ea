#!/usr/bin/env python3
"""patch_gguf_type.py IN OUT TENSOR TYPE: a copy of GGUF file IN whose tensor TENSOR's
type id is TYPE (e.g. 23 = IQ4_XS, 16 = IQ2_XXS, 6 = Q5_0), data left as is: a file with a
type moa cannot read, or whose sizes no longer agree, without a quantizer for that type."""
import struct, sys
src, dst, name, ty = sys.argv[1], sys.argv[2], sys.argv[3].encode(), int(sys.argv[4])
b = bytearray(open(src, 'rb').read())
assert b[:4] == b'GGUF'
off = 8
n_t, n_kv = struct.unpack_from('<QQ', b, off); off += 16
sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def skip_val(t, off):
    if t == 8:
        (n,) = struct.unpack_from('<Q', b, off); return off + 8 + n
    if t == 9:
        et, n = struct.unpack_from('<IQ', b, off); off += 12
        for _ in range(n): off = skip_val(et, off)
        return off
    return off + sizes[t]
for _ in range(n_kv):
    (n,) = struct.unpack_from('<Q', b, off); off += 8 + n
    (t,) = struct.unpack_from('<I', b, off); off += 4
    off = skip_val(t, off)
for _ in range(n_t):
    (n,) = struct.unpack_from('<Q', b, off); nm = bytes(b[off + 8:off + 8 + n]); off += 8 + n
    (nd,) = struct.unpack_from('<I', b, off); off += 4 + 8 * nd
    if nm == name:
        struct.pack_into('<I', b, off, ty); print(f'{nm.decode()}: type -> {ty}')
    off += 12
open(dst, 'wb').write(b)
