#!/bin/bash
# Several swap devices: uvmpagerd striping over two NBD servers (nbdkit
# memory on unix sockets, started here), with and without replicas, for a
# checking workload under the LD_PRELOAD shim.
#  1. two stripes: every page verified, swap-outs > 0, both servers
#     received writes (swap/stat's per-member bytes), the set and each
#     member show their requests' latency;
#  2. replicas 2: one server killed (-9) while the workload re-reads its
#     pages: 0 pages wrong, no SIGBUS, the workload exits 0, swap/stat
#     shows that member down and the set degraded; then workload B pages
#     out to server 1 alone, server 0 is restarted (empty) on its socket
#     while workload C pages out, the daemon reconnects and rebuilds it
#     (log line, member0_state up), server 1 is killed, and B and C
#     re-read every page from the rebuilt server 0: 0 wrong, no SIGBUS;
#  3. a local file and an NBD server mixed as two stripes: round trip;
#  4. replicas 2 with one server failing some writes (nbdkit's error
#     filter) but up: every page still right (the pager rewrites them);
#  5. two stripes without replicas, one server killed: SIGBUS for the
#     pages it held, no wrong page, the daemon lives, the set shows down.
#
# Environment: UVMPAGERD, UVMPAGER_PRELOAD, NBD_SET_IO (the daemon's --io, auto).
# Exits 77 when it cannot run.
set -u

skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "uvmpagerd needs root"
[ -n "${UVMPAGERD:-}" ] && [ -x "$UVMPAGERD" ] || skip "uvmpagerd is not built"
[ -n "${UVMPAGER_PRELOAD:-}" ] && [ -f "$UVMPAGER_PRELOAD" ] || skip "the shim is not built"
[ -e /dev/fuse ] || skip "no /dev/fuse for the daemon's stat file"
command -v nbdkit >/dev/null || skip "nbdkit is not installed (apt-get install nbdkit)"
python=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) || skip "no python3"

dir=$(mktemp -d /var/tmp/uvmpager-nbdset-XXXXXX) || exit 1
daemon= srv0= srv1=

cleanup() {
	[ -n "$daemon" ] && { kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; }
	for p in $srv0 $srv1; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	umount -l "$dir/mnt" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL: $*"; echo "--- daemon log"; tail -30 "$dir/daemon.log"; exit 1; }

# server N [ARGS]: nbdkit [--filter=F] memory 1G [PARAMS] on $dir/nbdN.sock, pid in srvN
server() {
	local n=$1 filter=() params=()
	shift
	for a in "$@"; do case $a in --filter=*) filter+=("$a");; *) params+=("$a");; esac; done
	set -- "$n"
	nbdkit -f -U "$dir/nbd$1.sock" "${filter[@]}" memory 1G "${params[@]}" 2>"$dir/nbdkit$1.log" &
	eval "srv$1=$!"
	for _ in $(seq 100); do [ -S "$dir/nbd$1.sock" ] && break; sleep 0.05; done
	[ -S "$dir/nbd$1.sock" ] || fail "nbdkit $1 did not start"
}
uri() { echo "nbd+unix:///?socket=$dir/nbd$1.sock"; }

# daemon ARGS...: uvmpagerd with these swap options
daemon() {
	mkdir -p "$dir/mnt"
	"$UVMPAGERD" --foreground --io "${NBD_SET_IO:-auto}" "$@" --socket "$dir/sock" \
		--mount "$dir/mnt" --budget 1G >"$dir/daemon.log" 2>&1 &
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
	for p in $srv0 $srv1; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	srv0= srv1=
	umount -l "$dir/mnt" 2>/dev/null
	rm -f "$dir"/nbd*.sock "$dir/sock"
}

stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$dir/mnt/stat"; }
swap_of() { awk -v k="$1" '$1 == k { print $2 }' "$dir/mnt/swap/stat"; }

# 128 MiB of pages each stamped with its number, under a 32 MiB budget;
# with a file name: checks once, waits for that file, checks again
# (twice), so that a server can die while it reads.
cat >"$dir/work.py" <<'PY'
import os, sys, time
n = 128 * 256
b = bytearray(n * 4096)
for i in range(n):
    b[i * 4096:i * 4096 + 16] = b'%016d' % i
    b[i * 4096 + 4000:i * 4096 + 4016] = b'%016d' % (i * 7)
def check():
    bad = 0
    for i in range(n):
        if b[i * 4096:i * 4096 + 16] != b'%016d' % i or b[i * 4096 + 4000:i * 4096 + 4016] != b'%016d' % (i * 7):
            bad += 1
    return bad
bad = 0
if len(sys.argv) > 1:
    bad += check()
    open(sys.argv[1] + '.ready', 'w').close()
    while not os.path.exists(sys.argv[1]):
        time.sleep(0.05)
    bad += check()
bad += check()
print('pages', n, 'wrong', bad, flush=True)
sys.exit(3 if bad else 0)
PY

shim() { local t=$1; shift; timeout -s KILL "$t" env LD_PRELOAD="$UVMPAGER_PRELOAD" UVMPAGER_SOCKET="$dir/sock" UVMPAGER_BUDGET=32M "$@"; }

round_trip() {
	local what=$1 out rc outs m0 m1
	out=$(shim 120 "$python" "$dir/work.py" 2>"$dir/work.err"); rc=$?
	outs=$(stat_of swapouts)
	m0=$(swap_of member0_write_bytes); m1=$(swap_of member1_write_bytes)
	echo "$what: rc $rc, $out, swapouts $outs, member writes $m0 / $m1 bytes," \
		"reads $(swap_of member0_read_bytes) / $(swap_of member1_read_bytes)"
	[ "$rc" = 0 ] || fail "$what: workload rc $rc: $out $(head -c 300 "$dir/work.err")"
	[ "${outs:-0}" -gt 0 ] || fail "$what: no swap-outs"
	[ "${m0:-0}" -gt 0 ] && [ "${m1:-0}" -gt 0 ] || fail "$what: a member got no writes: $(cat "$dir/mnt/swap/stat")"
	grep -q "^device_kind set" "$dir/mnt/swap/stat" || fail "$what: swap stat: $(cat "$dir/mnt/swap/stat")"
	grep -q "^device_state up" "$dir/mnt/swap/stat" || fail "$what: swap stat: $(cat "$dir/mnt/swap/stat")"
	check_latency "$what"
}

# The set and each member did reads and writes: their counts and latency
# are in swap/stat, and sane (mean > 0, max >= mean, under 5 s).
check_latency() {
	local what=$1 p op n mean max line
	for p in device member0 member1; do
		line="  $p:"
		for op in read write; do
			n=$(swap_of ${p}_${op}s)
			mean=$(swap_of ${p}_${op}_latency_us_mean)
			max=$(swap_of ${p}_${op}_latency_us_max)
			line="$line ${op}s $n mean $mean us max $max us;"
			[ "${n:-0}" -gt 0 ] || fail "$what: no ${p} ${op}s counted: $(cat "$dir/mnt/swap/stat")"
			[ "${mean:-0}" -gt 0 ] && [ "${max:-0}" -ge "$mean" ] && [ "$max" -lt 5000000 ] ||
				fail "$what: ${p} ${op} latency not sane (mean $mean, max $max)"
		done
		echo "$line"
	done
}

# 1. two NBD stripes
server 0; server 1
daemon --swap "$(uri 0)" --swap "$(uri 1)"
round_trip "2 stripes"
stop

# 2. replicas 2: one server dies while the pages are read back
server 0; server 1
daemon --swap "$(uri 0)" --swap "$(uri 1)" --replicas 2
shim 120 "$python" "$dir/work.py" "$dir/go" >"$dir/kill.out" 2>"$dir/kill.err" &
work=$!
for _ in $(seq 900); do [ -e "$dir/go.ready" ] && break; kill -0 $work 2>/dev/null || break; sleep 0.1; done
[ -e "$dir/go.ready" ] || fail "workload did not get ready: $(cat "$dir/kill.out" "$dir/kill.err")"
before=$(stat_of swapins)
touch "$dir/go"
sleep 0.3
kill -9 "$srv0"; wait "$srv0" 2>/dev/null; srv0=
t0=$SECONDS
wait "$work"; rc=$?
echo "replicas 2, server 0 killed mid-read: rc $rc in $((SECONDS - t0)) s, $(cat "$dir/kill.out")," \
	"swapins $before before the kill, $(stat_of swapins) after"
grep -m2 "down" "$dir/daemon.log"
[ "$rc" = 137 ] && fail "workload hung (killed by timeout)"
[ "$rc" = 135 ] && fail "SIGBUS with a replica left"
grep -q "wrong 0" "$dir/kill.out" || fail "wrong data: $(cat "$dir/kill.out")"
[ "$rc" = 0 ] || fail "workload rc $rc: $(head -c 300 "$dir/kill.err")"
kill -0 "$daemon" 2>/dev/null || fail "uvmpagerd died"
grep -q "^member0_state down" "$dir/mnt/swap/stat" || fail "member 0 not shown down: $(cat "$dir/mnt/swap/stat")"
grep -q "^device_state degraded" "$dir/mnt/swap/stat" || fail "set not degraded: $(cat "$dir/mnt/swap/stat")"
grep -q "member .*nbd0.sock is down" "$dir/daemon.log" || fail "member down not logged"
[ "$(grep -c "member .*nbd0.sock is down" "$dir/daemon.log")" = 1 ] || fail "member down logged more than once"
# and the swap goes on with one member: workload B pages out to server 1
# alone and waits; workload C starts when server 0 is back (so its pages
# are written while server 0 is rebuilt) and waits too
rm -f "$dir/go" "$dir/go.ready" "$dir/go2" "$dir/go2.ready"
shim 120 "$python" "$dir/work.py" "$dir/go" >"$dir/b.out" 2>"$dir/b.err" &
workb=$!
for _ in $(seq 900); do [ -e "$dir/go.ready" ] && break; kill -0 $workb 2>/dev/null || break; sleep 0.1; done
[ -e "$dir/go.ready" ] || fail "degraded set: workload B did not get ready: $(cat "$dir/b.out" "$dir/b.err")"
# restart server 0, empty, on the same socket: it is reconnected and rebuilt
rm -f "$dir/nbd0.sock"
server 0
t0=$SECONDS
shim 120 "$python" "$dir/work.py" "$dir/go2" >"$dir/c.out" 2>"$dir/c.err" &
workc=$!
for _ in $(seq 300); do grep -q "member .*nbd0.sock rebuilt" "$dir/daemon.log" && break; sleep 0.1; done
grep "nbd0.sock" "$dir/daemon.log" | grep -E "reconnected|answers again|rebuilt|stopped"
grep -q "member .*nbd0.sock rebuilt" "$dir/daemon.log" || fail "server 0 not rebuilt within 30 s: $(cat "$dir/mnt/swap/stat")"
echo "server 0 restarted: rebuilt after $((SECONDS - t0)) s; $(grep "^member0_rebuild_units" "$dir/mnt/swap/stat")"
grep -q "^member0_state up" "$dir/mnt/swap/stat" || fail "member 0 not up after its rebuild: $(cat "$dir/mnt/swap/stat")"
# nbdkit memory allows multi-conn: the reconnect reopened all 4 connections
grep -q "^member0_connections 4$" "$dir/mnt/swap/stat" || fail "member 0 reconnected without its 4 connections: $(grep connections "$dir/mnt/swap/stat")"
grep -q "^device_state up" "$dir/mnt/swap/stat" || fail "set not up after the rebuild: $(cat "$dir/mnt/swap/stat")"
for _ in $(seq 900); do [ -e "$dir/go2.ready" ] && break; kill -0 $workc 2>/dev/null || break; sleep 0.1; done
[ -e "$dir/go2.ready" ] || fail "workload C did not get ready: $(cat "$dir/c.out" "$dir/c.err")"
# (C's pages that are not in memory were written to both members: a page
# is dropped only when its write is done)
# now the OTHER server dies: every page must come from the rebuilt one
kill -9 "$srv1"; wait "$srv1" 2>/dev/null; srv1=
touch "$dir/go" "$dir/go2"
wait "$workb"; rcb=$?
wait "$workc"; rcc=$?
echo "server 1 killed after the rebuild: B (written while server 0 was down) rc $rcb, $(cat "$dir/b.out");" \
	"C (written during the rebuild) rc $rcc, $(cat "$dir/c.out")"
[ "$rcb" = 135 ] || [ "$rcc" = 135 ] && fail "SIGBUS after the rebuild: the rebuilt member lacks pages"
grep -q "wrong 0" "$dir/b.out" && grep -q "wrong 0" "$dir/c.out" || fail "wrong data after the rebuild"
[ "$rcb" = 0 ] && [ "$rcc" = 0 ] || fail "workload rc $rcb/$rcc: $(head -c 300 "$dir/b.err" "$dir/c.err")"
grep -q "^member0_state up" "$dir/mnt/swap/stat" || fail "member 0 should be up: $(cat "$dir/mnt/swap/stat")"
grep -q "^member1_state down" "$dir/mnt/swap/stat" || fail "member 1 should be down: $(cat "$dir/mnt/swap/stat")"
stop

# 3. a local file and an NBD server
server 1
daemon --swap "$dir/swapfile" --swap-size 512M --swap "$(uri 1)"
round_trip "file + nbd stripes"
stop

# 4. replicas 2, one server up but failing 2% of its writes: those writes
# fail as a whole (the copy on the up member would be stale), the pager
# writes the pages to other slots; no page is wrong
server 0 --filter=error error=EIO error-pwrite-rate=2%
server 1
daemon --swap "$(uri 0)" --swap "$(uri 1)" --replicas 2
round_trip "replicas 2, server 0 failing 2% of writes"
bad=$(swap_of slots_bad)
echo "  slots_bad $bad, member0_errors $(swap_of member0_errors), write_errors $(stat_of write_errors)"
[ "${bad:-0}" -gt 0 ] || fail "no write failed: $(cat "$dir/mnt/swap/stat")"
grep -q "^member0_state up" "$dir/mnt/swap/stat" || fail "member 0 should be up: $(cat "$dir/mnt/swap/stat")"
stop

# 5. two stripes, no replica, one server dies: the pages it held give
# SIGBUS, never zeros or stale data, and the set shows down
server 0; server 1
daemon --swap "$(uri 0)" --swap "$(uri 1)"
rm -f "$dir/go" "$dir/go.ready"
shim 120 "$python" "$dir/work.py" "$dir/go" >"$dir/kill.out" 2>"$dir/kill.err" &
work=$!
for _ in $(seq 900); do [ -e "$dir/go.ready" ] && break; kill -0 $work 2>/dev/null || break; sleep 0.1; done
[ -e "$dir/go.ready" ] || fail "workload did not get ready: $(cat "$dir/kill.out" "$dir/kill.err")"
kill -9 "$srv0"; wait "$srv0" 2>/dev/null; srv0=
touch "$dir/go"
wait "$work"; rc=$?
echo "2 stripes, server 0 killed: rc $rc, out: '$(cat "$dir/kill.out")'"
[ "$rc" = 137 ] && fail "workload hung (killed by timeout)"
grep -q "wrong [1-9]" "$dir/kill.out" && fail "wrong data after a stripe died"
[ "$rc" = 135 ] || fail "expected SIGBUS (rc 135), got rc $rc"
kill -0 "$daemon" 2>/dev/null || fail "uvmpagerd died"
grep -q "^device_state down" "$dir/mnt/swap/stat" || fail "set not shown down: $(cat "$dir/mnt/swap/stat")"
grep -q "pages whose every copy was on down members are lost" "$dir/daemon.log" || fail "loss not logged"
stop
echo "PASS"
