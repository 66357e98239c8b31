#!/usr/bin/python3
"""redis_client.py PORT N: SET N values of 1000 B (key:i) on 127.0.0.1:PORT,
then MGET every key back in batches of 100 and check each value; prints the
number of keys, the number of wrong or missing values and a sha256 of all."""
import hashlib
import socket
import sys

port, n = int(sys.argv[1]), int(sys.argv[2])
VSIZE, BATCH = 1000, 500


def value(i):
    s = b"%09d|" % i
    return (s * (VSIZE // len(s) + 1))[:VSIZE]


def resp(*args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in args)


sk = socket.create_connection(("127.0.0.1", port))
rd = sk.makefile("rb", buffering=1 << 16)
for lo in range(0, n, BATCH):
    hi = min(n, lo + BATCH)
    sk.sendall(b"".join(resp(b"SET", b"key:%d" % i, value(i)) for i in range(lo, hi)))
    for _ in range(lo, hi):
        r = rd.readline()
        if r != b"+OK\r\n":
            sys.exit("SET failed: %r" % r)
bad = 0
h = hashlib.sha256()
for lo in range(0, n, 100):
    keys = list(range(lo, min(n, lo + 100)))
    sk.sendall(resp(b"MGET", *[b"key:%d" % i for i in keys]))
    r = rd.readline()
    assert r.startswith(b"*"), r
    for i in keys:
        r = rd.readline()
        if r.startswith(b"$-1"):
            bad += 1
            continue
        v = rd.read(int(r[1:]) + 2)[:-2]
        if v != value(i):
            bad += 1
        h.update(v)
print(n, "values", bad, "bad", h.hexdigest())
