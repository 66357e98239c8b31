"""fill.py MB: about MB megabytes of live Python objects (bytes of 100-1900 B,
lists of ints, a dict of str), then a sha256 over all of it, printed."""
import hashlib
import random
import sys

mb = int(sys.argv[1]) if len(sys.argv) > 1 else 400
rnd = random.Random(7)
n_bytes = mb * 1024 * 1024 // 2 // 1050           # half in bytes objects
blobs = [rnd.randbytes(rnd.randint(100, 1900)) for _ in range(n_bytes)]
n_ints = mb * 1024 * 1024 // 4 // 40               # a quarter in lists of ints
lists = [[i * 7 + j for j in range(64)] for i in range(n_ints // 64)]
n_str = mb * 1024 * 1024 // 4 // 150               # a quarter in a dict of str
d = {i: "v%d-" % i * 8 for i in range(n_str)}
h = hashlib.sha256()
for b in blobs:
    h.update(b)
for l in lists:
    h.update(b"%d" % sum(l))
for k in range(0, n_str, 3):
    h.update(d[k].encode())
print(len(blobs), len(lists), len(d), h.hexdigest())
