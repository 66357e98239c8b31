#!/bin/bash
# Programs that manage their own memory, under the LD_PRELOAD shim, against
# a uvmpagerd of our own (issue 13's shim defects, issue 15's patterns).
# Each runs plain and managed; stdout and exit status must match, and
# where the case says so the managed run's peak resident set (ru_maxrss)
# must stay within its budget plus SLACK, and pages must have gone to
# swap and come back:
#   own_alloc_shared  a program linked to an allocator library of its own
#                     (malloc_usable_size and all), which the shim replaces
#                     (RSS and paging with the heap, SHIM_HEAP=1; without
#                     it, said once: its small blocks are in glibc's heap)
#   jemalloc_next     python with Debian's libjemalloc.so.2 loaded after the
#                     shim (the shim's malloc wins, jemalloc is next)
#   redis             Debian's redis-server (linked to libjemalloc.so.2):
#                     starts, stores 100k values of 980 B and returns them
#                     (with the heap: peak RSS within budget + slack)
#   brk               a heap of its own grown with sbrk: not managed, said once
#   own_alloc_static  the same allocator linked into the program, so that
#                     it wins over the shim's malloc: its 64 KiB pieces
#                     are managed (RSS within budget + slack, paging)
#   jemalloc_first    python with libjemalloc.so.2 preloaded before the
#                     shim: jemalloc is the program's allocator, and the
#                     memory it maps is managed (RSS, paging)
#   reserve           reserve PROT_NONE, commit with mprotect and with
#                     mmap(MAP_FIXED), decommit and commit again (RSS, paging)
#   reserve_exec      the same committed read-write-executable (a JIT's
#                     code cache), code run from pages paged out
#
# Environment: UVMPAGERD, UVMPAGER_PRELOAD, and the test programs
# OWN_ALLOC_SHARED, OWN_ALLOC_STATIC, RESERVE_PROG, BRK_PROG (built by meson);
# SHIM_HEAP=1 when the shim was built with jemalloc.
# Exits 77 when it cannot run.
set -u

skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "uvmpagerd needs root"
[ -n "${UVMPAGERD:-}" ] && [ -x "$UVMPAGERD" ] || skip "uvmpagerd is not built (UVMPAGERD=${UVMPAGERD:-unset})"
[ -n "${UVMPAGER_PRELOAD:-}" ] && [ -f "$UVMPAGER_PRELOAD" ] ||
	skip "libuvmpager-preload.so is not built (UVMPAGER_PRELOAD=${UVMPAGER_PRELOAD:-unset})"
[ -e /dev/fuse ] || skip "no /dev/fuse for the daemon's stat file"
python=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) || skip "no python3"

dir=$(mktemp -d /var/tmp/uvmpager-heap-XXXXXX) || exit 1
daemon=
redis=

cleanup() {
	[ -n "$redis" ] && kill "$redis" 2>/dev/null
	if [ -n "$daemon" ]; then
		kill "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
	fi
	umount -l "$dir/mnt" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir -p "$dir/mnt"
# shellcheck disable=SC2086
"$UVMPAGERD" --foreground --swap-file "$dir/swap" --swap-size 2G --socket "$dir/sock" \
	--mount "$dir/mnt" --budget 1G ${UVMPAGERD_ARGS:-} >"$dir/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do
	[ -S "$dir/sock" ] && [ -r "$dir/mnt/stat" ] && break
	kill -0 "$daemon" 2>/dev/null || { cat "$dir/daemon.log"; echo "FAIL: uvmpagerd did not start"; exit 1; }
	sleep 0.1
done
[ -S "$dir/sock" ] && [ -r "$dir/mnt/stat" ] || { cat "$dir/daemon.log"; echo "FAIL: uvmpagerd did not start"; exit 1; }

stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$dir/mnt/stat"; }

# maxrss FILE CMD...: runs CMD, writes its peak resident set (KiB) to FILE
cat >"$dir/maxrss.py" <<'PY'
import os, resource, subprocess, sys
r = subprocess.run(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=f)
sys.exit(r.returncode if r.returncode >= 0 else 128 - r.returncode)
PY

passed=0
failed=0
skipped=0
BUDGET=32M
BUDGET_KIB=$((32 * 1024))
# what lives outside the budget by design: the program's text, libraries,
# stack, the shim's and the client library's own state, page tables, and
# the pages the daemon has not evicted yet when the budget is crossed
SLACK_KIB=$((40 * 1024))

# the shim's line for memory outside the budget (libuvmpager-preload(7))
unmanaged='^uvmpager\[[0-9]*\]: .* is not managed: '

# run [--rss] [--paging] [--warns] NAME CMD...: plain, then under the shim.
# --rss: peak RSS within budget + slack, and no line saying memory is
# unmanaged; --warns: exactly one such line.
run() {
	local rss=no paging=no warns=any name outs ins rc_plain rc_shim why= kib nwarn
	while [ "${1#--}" != "$1" ]; do
		case $1 in
		--rss) rss=yes warns=0 ;;
		--paging) paging=yes ;;
		--warns) warns=1 ;;
		esac
		shift
	done
	name=$1
	shift
	local t0=$EPOCHREALTIME t1 t2
	"$@" >"$dir/$name.out.plain" 2>"$dir/$name.err.plain" </dev/null
	rc_plain=$?
	t1=$EPOCHREALTIME
	outs=$(stat_of swapouts)
	ins=$(stat_of swapins)
	env LD_PRELOAD="${SHIM_PRELOAD:-$UVMPAGER_PRELOAD}" UVMPAGER_SOCKET="$dir/sock" \
		UVMPAGER_BUDGET=$BUDGET "$python" "$dir/maxrss.py" "$dir/$name.rss" "$@" \
		>"$dir/$name.out.shim" 2>"$dir/$name.err.shim" </dev/null
	rc_shim=$?
	t2=$EPOCHREALTIME
	outs=$(( $(stat_of swapouts) - outs ))
	ins=$(( $(stat_of swapins) - ins ))
	kib=$(cat "$dir/$name.rss" 2>/dev/null || echo 0)
	nwarn=$(grep -c "$unmanaged" "$dir/$name.err.shim")
	if [ "$rc_plain" != "$rc_shim" ]; then
		why="exit status $rc_shim, plain $rc_plain: $(head -c 300 "$dir/$name.err.shim")"
	elif ! cmp -s "$dir/$name.out.plain" "$dir/$name.out.shim"; then
		why="stdout differs: $(cmp "$dir/$name.out.plain" "$dir/$name.out.shim" 2>&1 | head -1)"
	elif [ "$paging" = yes ] && { [ "$outs" -le 0 ] || [ "$ins" -le 0 ]; }; then
		why="no paging (swapouts +$outs, swapins +$ins)"
	elif [ "$rss" = yes ] && [ "$kib" -gt $((BUDGET_KIB + SLACK_KIB)) ]; then
		why="peak RSS $((kib / 1024)) MiB > budget $((BUDGET_KIB / 1024)) MiB + slack $((SLACK_KIB / 1024)) MiB"
	elif [ "$warns" != any ] && [ "$nwarn" != "$warns" ]; then
		why="$nwarn lines saying memory is not managed, $warns expected: $(head -c 300 "$dir/$name.err.shim")"
	elif ! kill -0 "$daemon" 2>/dev/null; then
		why="uvmpagerd died"
	fi
	if [ -z "$why" ]; then
		[ "$nwarn" -gt 0 ] && echo "  $name: $(grep "$unmanaged" "$dir/$name.err.shim")"
		echo "PASS $name (exit $rc_plain; swapouts +$outs, swapins +$ins; peak RSS $((kib / 1024)) MiB," \
			"budget $((BUDGET_KIB / 1024)) MiB;" \
			"plain $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s," \
			"managed $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", b - a }') s)"
		passed=$((passed + 1))
	else
		echo "FAIL $name: $why"
		failed=$((failed + 1))
	fi
}

jemalloc=$(ldconfig -p | awk '$1 == "libjemalloc.so.2" { print $NF; exit }')

# a growing buffer (realloc past the shim's threshold), then ~150 MB of
# small objects (python's own arenas, and malloc for the strings)
cat >"$dir/grow.py" <<'PY'
import hashlib
b = bytearray()
for i in range(300000):
    b += b'%08d' % i * 8
d = {i: str(i) * 9 for i in range(1500000)}
h = hashlib.sha256()
for i in range(0, 1500000, 3):
    h.update(d[i].encode())
print(len(b), hashlib.sha256(b).hexdigest(), len(d), h.hexdigest())
PY

# the shim's own malloc in its place: with the heap (jemalloc over managed
# segments) every block is managed; without it, the small blocks are in
# glibc's heap, outside the budget, and that is said once
if [ "${SHIM_HEAP:-0}" = 1 ]; then
	run --rss --paging own_alloc_shared env ALLOC_PROG_MB=96 "$OWN_ALLOC_SHARED"
else
	run --warns own_alloc_shared env ALLOC_PROG_MB=96 "$OWN_ALLOC_SHARED"
fi
run --warns brk "$BRK_PROG"
run --rss --paging own_alloc_static env ALLOC_PROG_MB=96 "$OWN_ALLOC_STATIC"
run --rss --paging reserve env RESERVE_PROG_MB=128 "$RESERVE_PROG"
run --rss --paging reserve_exec env RESERVE_PROG_MB=128 RESERVE_PROG_EXEC=1 "$RESERVE_PROG"
if [ -n "$jemalloc" ]; then
	SHIM_PRELOAD="$UVMPAGER_PRELOAD $jemalloc" run jemalloc_next "$python" "$dir/grow.py"
	SHIM_PRELOAD="$jemalloc $UVMPAGER_PRELOAD" run --rss --paging jemalloc_first "$python" "$dir/grow.py"
else
	echo "SKIP jemalloc_next, jemalloc_first: no libjemalloc.so.2 (package libjemalloc2)"
	skipped=$((skipped + 2))
fi

# redis-server: starts under the shim, takes values and gives them back
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
	env LD_PRELOAD="$UVMPAGER_PRELOAD" UVMPAGER_SOCKET="$dir/sock" UVMPAGER_BUDGET=$BUDGET \
		redis-server --port 0 --unixsocket "$dir/redis.sock" --save "" --appendonly no \
		--daemonize no >"$dir/redis.log" 2>&1 &
	redis=$!
	for _ in $(seq 100); do
		[ -S "$dir/redis.sock" ] && break
		kill -0 "$redis" 2>/dev/null || break
		sleep 0.1
	done
	"$python" - "$dir/redis.sock" >"$dir/redis.out" 2>&1 <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rb")
def cmd(*a):
    s.sendall(b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a))
def reply():
    l = f.readline()
    if l[:1] == b"$":
        n = int(l[1:])
        return None if n < 0 else f.read(n + 2)[:-2]
    return l.rstrip(b"\r\n")
n = 100000
for i in range(n):
    cmd(b"SET", b"k%d" % i, (b"%07d" % i) * 140)
    if i % 1000 == 999:
        for _ in range(1000):
            assert reply() == b"+OK"
for i in range(0, n, 7):
    cmd(b"GET", b"k%d" % i)
bad = sum(reply() != (b"%07d" % i) * 140 for i in range(0, n, 7))
cmd(b"DBSIZE")
print("bad", bad, "dbsize", reply().decode())
PY
	kib=$(awk '/^VmHWM/ { print $2 }' "/proc/$redis/status" 2>/dev/null)
	kib=${kib:-0}
	if ! grep -qx "bad 0 dbsize :100000" "$dir/redis.out" || ! kill -0 "$redis" 2>/dev/null; then
		echo "FAIL redis: $(head -c 300 "$dir/redis.out"); log: $(tail -5 "$dir/redis.log")"
		failed=$((failed + 1))
	elif [ "${SHIM_HEAP:-0}" = 1 ] && [ "$kib" -gt $((BUDGET_KIB + SLACK_KIB)) ]; then
		echo "FAIL redis: peak RSS $((kib / 1024)) MiB > budget $((BUDGET_KIB / 1024)) MiB + slack"
		failed=$((failed + 1))
	else
		echo "PASS redis ($(cat "$dir/redis.out"); peak RSS $((kib / 1024)) MiB, budget $((BUDGET_KIB / 1024)) MiB)"
		passed=$((passed + 1))
	fi
	kill "$redis" 2>/dev/null
	wait "$redis" 2>/dev/null
	redis=
else
	echo "SKIP redis: no redis-server (package redis-server)"
	skipped=$((skipped + 1))
fi

if [ "$failed" -gt 0 ]; then
	echo "--- uvmpagerd log"
	tail -20 "$dir/daemon.log"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
