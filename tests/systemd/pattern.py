# A program to run managed: fills SIZE MiB with a pattern (one number per
# page), says so in DIR/ready, waits for DIR/go, then checks every page
# and exits 0 only if each holds its own number.
import os
import sys
import time

size, where = int(sys.argv[1]) << 20, sys.argv[2]
buf = bytearray(size)      # one large allocation: the shim's
for off in range(0, size, 4096):
    buf[off:off + 8] = off.to_bytes(8, 'little')
open(os.path.join(where, 'ready'), 'w').close()
while not os.path.exists(os.path.join(where, 'go')):
    time.sleep(0.05)
bad = sum(1 for off in range(0, size, 4096)
          if int.from_bytes(buf[off:off + 8], 'little') != off)
print('pages %d wrong %d' % (size // 4096, bad))
sys.exit(1 if bad else 0)
