#!/bin/bash
# Far memory: uvmpagerd swapping to an NBD server (nbdkit memory on a unix
# socket, started here) for a checking workload under the LD_PRELOAD shim.
#  1. data verified, swap-outs > 0;
#     swap/stat shows the device's requests and their latency;
#  1b. the same against nbd-server exporting a file (its own config file),
#     with a fork: parent and child (the engine's clone, sharing the swap
#     slots on the server) each check every page;
#  2. the server killed (-9) while the workload's pages are out: touching
#     them gives SIGBUS, never zeros and never a hang;
#  3. the server back, empty: a reconnect, SIGBUS for what it lost;
#  4. writes held in flight (pause filter) under a block moved onto them.
#
# Environment: UVMPAGERD, UVMPAGER_PRELOAD, HELD_IO. Exits 77 when it cannot run.
set -u

skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "uvmpagerd needs root"
[ -n "${UVMPAGERD:-}" ] && [ -x "$UVMPAGERD" ] || skip "uvmpagerd is not built"
[ -n "${UVMPAGER_PRELOAD:-}" ] && [ -f "$UVMPAGER_PRELOAD" ] || skip "the shim is not built"
[ -n "${HELD_IO:-}" ] && [ -x "$HELD_IO" ] || skip "HELD_IO (tests/nbd/held_io.c) is not built"
[ -e /dev/fuse ] || skip "no /dev/fuse for the daemon's stat file"
command -v nbdkit >/dev/null || skip "nbdkit is not installed (apt-get install nbdkit)"
python=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) || skip "no python3"

dir=$(mktemp -d /var/tmp/uvmpager-nbd-XXXXXX) || exit 1
daemon= server= nbdsrv=

cleanup() {
	[ -n "$daemon" ] && { kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; }
	[ -n "$server" ] && { kill -9 "$server" 2>/dev/null; wait "$server" 2>/dev/null; }
	stop_nbd_server
	umount -l "$dir/mnt" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL: $*"; echo "--- daemon log"; tail -30 "$dir/daemon.log"; exit 1; }

# nbd-server daemonizes (-d would serve one connection only): its pid is
# the listener's, found by the socket's path. It writes /run/nbd-server.pid
# whatever the config says; only ours is removed.
start_nbd_server() {
	truncate -s 1G "$dir/export.img"
	printf '[generic]\n\tunixsock = %s\n[swap]\n\texportname = %s\n' \
		"$dir/nbd-server.sock" "$dir/export.img" >"$dir/nbd-server.conf"
	nbd-server -C "$dir/nbd-server.conf" >"$dir/nbd-server.log" 2>&1 || fail "nbd-server: $(cat "$dir/nbd-server.log")"
	for _ in $(seq 100); do [ -S "$dir/nbd-server.sock" ] && break; sleep 0.05; done
	nbdsrv=$(ss -xlpn | awk -v s="$dir/nbd-server.sock" '$5 == s' | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
	[ -n "$nbdsrv" ] || fail "nbd-server did not start: $(cat "$dir/nbd-server.log")"
}

stop_nbd_server() {
	[ -n "$nbdsrv" ] || return 0
	kill "$nbdsrv" 2>/dev/null
	[ "$(cat /run/nbd-server.pid 2>/dev/null)" = "$nbdsrv" ] && rm -f /run/nbd-server.pid
	nbdsrv=
}

# start [URI [DAEMON ARGS...]]: the daemon on URI, or on nbdkit memory started here
start() {
	local uri=${1:-}
	shift
	if [ -z "$uri" ]; then
		nbdkit -f -U "$dir/nbd.sock" memory 1G 2>"$dir/nbdkit.log" &
		server=$!
		for _ in $(seq 100); do [ -S "$dir/nbd.sock" ] && break; sleep 0.05; done
		[ -S "$dir/nbd.sock" ] || fail "nbdkit did not start"
		uri="nbd+unix:///?socket=$dir/nbd.sock"
	fi
	mkdir -p "$dir/mnt"
	"$UVMPAGERD" --foreground --swap "$uri" --socket "$dir/sock" \
		--mount "$dir/mnt" --budget 1G "$@" >"$dir/daemon.log" 2>&1 &
	daemon=$!
	for _ in $(seq 100); do
		[ -S "$dir/sock" ] && [ -r "$dir/mnt/stat" ] && break
		kill -0 "$daemon" 2>/dev/null || fail "uvmpagerd did not start"
		sleep 0.1
	done
	[ -r "$dir/mnt/stat" ] || fail "uvmpagerd did not start"
}

stop() {
	kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; daemon=
	[ -n "$server" ] && { kill -9 "$server" 2>/dev/null; wait "$server" 2>/dev/null; }
	server=
	stop_nbd_server
	umount -l "$dir/mnt" 2>/dev/null
	rm -f "$dir/nbd.sock"
}

stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$dir/mnt/stat"; }
swap_stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$dir/mnt/swap/stat"; }

# The device did I/O: its requests and latency are counted, and sane
# (mean > 0, max >= mean, under the 5 s NBD timeout).
check_latency() {
	local op n mean max
	for op in read write; do
		n=$(swap_stat_of device_${op}s)
		mean=$(swap_stat_of device_${op}_latency_us_mean)
		max=$(swap_stat_of device_${op}_latency_us_max)
		echo "  device ${op}s $n, latency mean $mean us, max $max us"
		[ "${n:-0}" -gt 0 ] || fail "no ${op}s counted: $(cat "$dir/mnt/swap/stat")"
		[ "${mean:-0}" -gt 0 ] && [ "${max:-0}" -ge "$mean" ] && [ "$max" -lt 5000000 ] ||
			fail "${op} latency not sane (mean $mean, max $max)"
	done
}

# 128 MiB of pages each stamped with its number, under a 32 MiB budget;
# waits for $dir/go (if given), then checks every page.
cat >"$dir/work.py" <<'PY'
import os, sys, time
# argv[1]: wait for that file (after writing it + '.ready'), or 'fork':
# fork once every page is written; the child and then the parent check all
n = 128 * 256
b = bytearray(n * 4096)
for i in range(n):
    b[i * 4096:i * 4096 + 16] = b'%016d' % i
    b[i * 4096 + 4000:i * 4096 + 4016] = b'%016d' % (i * 7)
def check(who):
    bad = 0
    for i in range(n):
        if b[i * 4096:i * 4096 + 16] != b'%016d' % i or b[i * 4096 + 4000:i * 4096 + 4016] != b'%016d' % (i * 7):
            bad += 1
    print(who + 'pages', n, 'wrong', bad, flush=True)
    return bad
if len(sys.argv) > 1 and sys.argv[1] == 'fork':
    pid = os.fork()
    if pid == 0:
        os._exit(3 if check('child: ') else 0)
    _, st = os.waitpid(pid, 0)
    if st != 0:
        print('child status', st, flush=True)
        sys.exit(4)
    sys.exit(3 if check('parent: ') else 0)
if len(sys.argv) > 1:
    open(sys.argv[1] + '.ready', 'w').close()
    while not os.path.exists(sys.argv[1]):
        time.sleep(0.05)
sys.exit(3 if check('') else 0)
PY

shim() { local t=$1; shift; timeout -s KILL "$t" env LD_PRELOAD="$UVMPAGER_PRELOAD" UVMPAGER_SOCKET="$dir/sock" UVMPAGER_BUDGET=32M "$@"; }

# 1. round trip
start
out=$(shim 120 "$python" "$dir/work.py" 2>"$dir/work.err"); rc=$?
outs=$(stat_of swapouts); ins=$(stat_of swapins)
echo "round trip: rc $rc, $out, swapouts $outs, swapins $ins"
[ "$rc" = 0 ] || fail "workload rc $rc: $out $(head -c 300 "$dir/work.err")"
[ "${outs:-0}" -gt 0 ] && [ "${ins:-0}" -gt 0 ] || fail "no paging over NBD (swapouts $outs, swapins $ins)"
grep -q "^device_kind nbd" "$dir/mnt/swap/stat" || fail "swap stat file: $(cat "$dir/mnt/swap/stat")"
# nbdkit memory allows multi-conn: the device opened 4 connections
conns=$(swap_stat_of device_connections)
echo "  device_connections $conns"
[ "$conns" = 4 ] || fail "expected 4 connections to nbdkit memory (multi-conn), got '$conns'"
check_latency
stop

# 1t. TLS with a pre-shared key (nbds+unix://, tls-psk-file in the URI):
# the right key pages; a wrong key is a start error naming the device
if nbdkit --dump-config 2>/dev/null | grep -q '^tls=yes'; then
	"$python" -c 'import secrets; print("uvmp:" + secrets.token_hex(32))' >"$dir/psk"
	"$python" -c 'import secrets; print("uvmp:" + secrets.token_hex(32))' >"$dir/psk.wrong"
	chmod 600 "$dir/psk" "$dir/psk.wrong"
	nbdkit -f -U "$dir/nbd.sock" --tls=require --tls-psk="$dir/psk" memory 1G 2>"$dir/nbdkit.log" &
	server=$!
	for _ in $(seq 100); do [ -S "$dir/nbd.sock" ] && break; sleep 0.05; done
	[ -S "$dir/nbd.sock" ] || fail "nbdkit (TLS) did not start"
	mkdir -p "$dir/mnt"
	for bad in "nbds+unix://uvmp@/?socket=$dir/nbd.sock&tls-psk-file=$dir/psk.wrong" \
		   "nbd+unix:///?socket=$dir/nbd.sock"; do
		timeout -s KILL 30 "$UVMPAGERD" --foreground --swap "$bad" --socket "$dir/sock" \
			--mount "$dir/mnt" --budget 1G >"$dir/bad.log" 2>&1; rc=$?
		echo "  bad key/no TLS: rc $rc: $(head -c 300 "$dir/bad.log" | tr '\n' ' ')"
		[ "$rc" != 0 ] && [ "$rc" != 137 ] || fail "uvmpagerd started (or hung, rc $rc) with $bad"
		grep -qF "${bad%%\?*}" "$dir/bad.log" && grep -qF "socket=$dir/nbd.sock" "$dir/bad.log" ||
			fail "the start error does not name the device: $(cat "$dir/bad.log")"
		umount -l "$dir/mnt" 2>/dev/null
	done
	start "nbds+unix://uvmp@/?socket=$dir/nbd.sock&tls-psk-file=$dir/psk"
	out=$(shim 120 "$python" "$dir/work.py" 2>"$dir/work.err"); rc=$?
	outs=$(stat_of swapouts); ins=$(stat_of swapins)
	echo "TLS-PSK round trip: rc $rc, $out, swapouts $outs, swapins $ins, connections $(swap_stat_of device_connections)"
	[ "$rc" = 0 ] || fail "workload rc $rc over TLS: $out $(head -c 300 "$dir/work.err")"
	[ "${outs:-0}" -gt 0 ] && [ "${ins:-0}" -gt 0 ] || fail "no paging over NBD with TLS (swapouts $outs, swapins $ins)"
	check_latency
	stop
else
	echo "this nbdkit has no TLS: the TLS round is skipped"
fi

# 1b. nbd-server over a file, with a fork
if command -v nbd-server >/dev/null && command -v ss >/dev/null; then
	start_nbd_server
	start "nbd+unix:///swap?socket=$dir/nbd-server.sock"
	out=$(shim 120 "$python" "$dir/work.py" fork 2>"$dir/work.err"); rc=$?
	outs=$(stat_of swapouts); ins=$(stat_of swapins)
	echo "nbd-server, fork: rc $rc, $(echo $out), swapouts $outs, swapins $ins, export $(du -k "$dir/export.img" | cut -f1) KiB allocated"
	[ "$rc" = 0 ] || fail "workload rc $rc: $out $(head -c 300 "$dir/work.err")"
	[ "$(echo "$out" | grep -c 'wrong 0')" = 2 ] || fail "parent and child did not both check: $out"
	[ "${outs:-0}" -gt 0 ] && [ "${ins:-0}" -gt 0 ] || fail "no paging over NBD (swapouts $outs, swapins $ins)"
	check_latency
	stop
else
	echo "nbd-server (or ss) not installed: its round is skipped"
fi

# 2. the server dies while the pages are out: SIGBUS, no zeros, no hang
start
shim 90 "$python" "$dir/work.py" "$dir/go" >"$dir/kill.out" 2>"$dir/kill.err" &
work=$!
for _ in $(seq 600); do [ -e "$dir/go.ready" ] && break; sleep 0.1; done
[ -e "$dir/go.ready" ] || fail "workload did not get ready"
echo "before kill: swapouts $(stat_of swapouts)"
kill -9 "$server"; wait "$server" 2>/dev/null; server=
t0=$SECONDS
touch "$dir/go"
wait "$work"; rc=$?
echo "after kill: rc $rc in $((SECONDS - t0)) s, out: $(cat "$dir/kill.out")"
grep -q "down" "$dir/daemon.log" && echo "daemon log: $(grep -m1 down "$dir/daemon.log")"
[ "$rc" = 137 ] && fail "workload hung (killed by timeout)"
grep -q "wrong [1-9]" "$dir/kill.out" && fail "wrong data after the server died: $(cat "$dir/kill.out")"
[ "$rc" = 135 ] || fail "expected SIGBUS (rc 135), got rc $rc"
kill -0 "$daemon" 2>/dev/null || fail "uvmpagerd died"
grep -q "^device_state down" "$dir/mnt/swap/stat" || fail "device not shown down: $(cat "$dir/mnt/swap/stat")"

# 3. the server comes back, empty, on the same socket: a single device
# reconnects and is written to again; a page only the dead server had
# is judged by its checksum: SIGBUS, never the empty server's zeros
stop
start
shim 90 "$python" "$dir/work.py" "$dir/go3" >"$dir/back.out" 2>"$dir/back.err" &
work=$!
for _ in $(seq 600); do [ -e "$dir/go3.ready" ] && break; sleep 0.1; done
[ -e "$dir/go3.ready" ] || fail "workload (3) did not get ready"
kill -9 "$server"; wait "$server" 2>/dev/null; server=
for _ in $(seq 100); do grep -q "^device_state down" "$dir/mnt/swap/stat" && break; sleep 0.1; done
rm -f "$dir/nbd.sock"
nbdkit -f -U "$dir/nbd.sock" memory 1G 2>>"$dir/nbdkit.log" &
server=$!
for _ in $(seq 100); do grep -q "^device_state up" "$dir/mnt/swap/stat" && break; sleep 0.1; done
grep -q "^device_state up" "$dir/mnt/swap/stat" || fail "single device did not come back: $(cat "$dir/mnt/swap/stat")"
grep -q "reconnected" "$dir/daemon.log" || fail "no reconnect in the log"
touch "$dir/go3"
wait "$work"; rc=$?
echo "server back: $(grep -m1 reconnected "$dir/daemon.log"); the old pages: rc $rc, $(cat "$dir/back.out")"
grep -q "wrong [1-9]" "$dir/back.out" && fail "wrong data (zeros?) from the restarted server: $(cat "$dir/back.out")"
[ "$rc" = 135 ] || fail "expected SIGBUS (rc 135) for pages the dead server had, got rc $rc"
outs0=$(stat_of swapouts)
out=$(shim 120 "$python" "$dir/work.py" 2>"$dir/work.err"); rc=$?
echo "after the comeback: rc $rc, $out, swapouts +$(( $(stat_of swapouts) - outs0 ))"
[ "$rc" = 0 ] || fail "workload rc $rc on the reconnected device: $out $(head -c 300 "$dir/work.err")"
[ "$(stat_of swapouts)" -gt "$outs0" ] || fail "nothing written to the reconnected device"

# 4. writes held in flight (nbdkit's pause filter) while the program
# moves a block by raw mremap onto pages being written: those pages left
# their object busy, and their addresses are the moved block's now. The
# moved block keeps what it was given, under both write trackings
# (tests/nbd/held_io.c says what broke there).
for tracking in wp-async wp-sync; do
	stop
	nbdkit -f -U "$dir/nbd.sock" --filter=pause memory 1G pause-control="$dir/pause.sock" \
		2>"$dir/nbdkit.log" &
	server=$!
	for _ in $(seq 100); do [ -S "$dir/nbd.sock" ] && [ -S "$dir/pause.sock" ] && break; sleep 0.05; done
	[ -S "$dir/pause.sock" ] || fail "nbdkit with the pause filter did not start: $(cat "$dir/nbdkit.log")"
	start "nbd+unix:///?socket=$dir/nbd.sock" --tracking "$tracking"
	out=$(timeout -s KILL 60 env LD_PRELOAD="$UVMPAGER_PRELOAD" UVMPAGER_SOCKET="$dir/sock" \
		UVMPAGER_BUDGET=24M UVMPAGER_SEGMENT_SIZE=2M "$HELD_IO" "$dir/pause.sock" "$dir/mnt" 2>&1); rc=$?
	echo "held write-out, $tracking: rc $rc: $(echo $out)"
	[ "$rc" = 0 ] || fail "held write-out under a moved block ($tracking): rc $rc: $out"
	rm -f "$dir/pause.sock"
done
echo "PASS"
