#!/usr/bin/python3
"""kvclient.py PROTO PORT N QUERIES: load N values of 1000 B into a
memcached (PROTO mc) or redis (PROTO redis) server on 127.0.0.1:PORT, then
QUERIES random multi-gets of 20 keys; prints the sha256 of every value
returned, in order, and the number of keys missing (0 when nothing was lost).
"""
import hashlib
import random
import socket
import sys

proto, port, n, queries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
BATCH, MULTI, VSIZE = 500, 20, 1000


def value(i):
    s = b"%09d|" % i
    return (s * (VSIZE // len(s) + 1))[:VSIZE]


sk = socket.create_connection(("127.0.0.1", port))
sk.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rd = sk.makefile("rb", buffering=1 << 16)


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for x in args:
        out.append(b"$%d\r\n%s\r\n" % (len(x), x))
    return b"".join(out)


def line():
    s = rd.readline()
    if not s:
        raise SystemExit("kvclient: the server closed the connection")
    return s


for lo in range(0, n, BATCH):
    hi = min(n, lo + BATCH)
    if proto == "mc":
        buf = b"".join(b"set key:%d 0 0 %d noreply\r\n%s\r\n" % (i, VSIZE, value(i)) for i in range(lo, hi))
        sk.sendall(buf + b"mn\r\n")
        r = line()
        if r != b"MN\r\n":
            raise SystemExit("kvclient: set failed: %r" % r)
    else:
        sk.sendall(b"".join(resp(b"SET", b"key:%d" % i, value(i)) for i in range(lo, hi)))
        for _ in range(lo, hi):
            r = line()
            if r != b"+OK\r\n":
                raise SystemExit("kvclient: SET failed: %r" % r)

rnd = random.Random(42)
h = hashlib.sha256()
missing = 0
for _ in range(queries):
    keys = [b"key:%d" % rnd.randrange(n) for _ in range(MULTI)]
    got = {}
    if proto == "mc":
        sk.sendall(b"get " + b" ".join(keys) + b"\r\n")
        while True:
            r = line()
            if r == b"END\r\n":
                break
            p = r.split()
            if p[0] != b"VALUE":
                raise SystemExit("kvclient: get: %r" % r)
            got[p[1]] = rd.read(int(p[3]) + 2)[:-2]
    else:
        sk.sendall(resp(b"MGET", *keys))
        r = line()
        for k in keys:
            r = line()
            if r.startswith(b"$-1"):
                continue
            got[k] = rd.read(int(r[1:]) + 2)[:-2]
    for k in keys:
        v = got.get(k)
        if v is None:
            missing += 1
        else:
            h.update(v)
print(h.hexdigest(), "missing", missing)
