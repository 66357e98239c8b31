#!/usr/bin/python3
"""numpy_work.py N: N random float64 (seeded), sorted in place, sha256 of
the sorted array, then 1M random gathers; prints the digest and the sums."""
import hashlib
import sys
import numpy as np

n = int(sys.argv[1])
rng = np.random.default_rng(1)
a = rng.random(n)
a.sort()
print(hashlib.sha256(a.data).hexdigest())
idx = rng.integers(0, n, size=1 << 20)
for r in range(4):
    print(r, repr(float(a[idx].sum())))
    idx = (idx * 7 + 13) % n
