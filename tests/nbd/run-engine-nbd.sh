#!/bin/bash
# The engine suites with their swap on an NBD device instead of a local
# file (UVMPAGER_TEST_SWAP, tests/engine_helpers.h), against two servers
# started here on unix sockets:
#   - nbdkit memory (far memory), with its stats filter as proof of traffic;
#   - nbd-server exporting a sparse file (its own config file, in the
#     temporary directory).
# A subset of cases, scaled down (UVMPAGER_TEST_SCALE) to stay bounded:
#   test_engine          big (swap-out/in of 4x the budget, read-ahead,
#                        clustering, clean re-eviction writing nothing),
#                        hammer (writers against eviction), errors (a slot
#                        corrupted on the server: checksum, SIGBUS)
#   test_pageout_errors  errors (write errors through the engine's fault
#                        hook: retried elsewhere, nothing lost)
#   test_pdaemon         policy (laundering, fenced reads, budgets)
# One tracking mode (UVMPAGER_TEST_TRACK, default wp-async); the I/O engine
# is io_uring against nbdkit and threads against nbd-server (the NBD
# device has its own transport; the engine still runs fault reads and the
# injection hook).
#
# Environment: TEST_ENGINE, TEST_PAGEOUT_ERRORS, TEST_PDAEMON (binaries).
# Exits 77 when it cannot run.
set -u

skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "the engine tests need root"
for b in "${TEST_ENGINE:-}" "${TEST_PAGEOUT_ERRORS:-}" "${TEST_PDAEMON:-}"; do
	[ -n "$b" ] && [ -x "$b" ] || skip "test binaries not given (TEST_ENGINE, TEST_PAGEOUT_ERRORS, TEST_PDAEMON)"
done
command -v nbdkit >/dev/null || skip "nbdkit is not installed (apt-get install nbdkit)"
command -v nbd-server >/dev/null || skip "nbd-server is not installed (apt-get install nbd-server)"
command -v ss >/dev/null || skip "ss (iproute2) is needed to find nbd-server's pid"

dir=$(mktemp -d /var/tmp/uvmpager-engine-nbd-XXXXXX) || exit 1
server= nbdsrv=

cleanup() {
	[ -n "$server" ] && { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; }
	if [ -n "$nbdsrv" ]; then
		kill "$nbdsrv" 2>/dev/null
		# it writes /run/nbd-server.pid whatever the config says; only ours is removed
		[ "$(cat /run/nbd-server.pid 2>/dev/null)" = "$nbdsrv" ] && rm -f /run/nbd-server.pid
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL: $*"; exit 1; }

export CK_FORK=yes CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120}
export UVMPAGER_TEST_SCALE=${UVMPAGER_TEST_SCALE:-4}
export UVMPAGER_TEST_TRACK=${UVMPAGER_TEST_TRACK:-wp-async}

# run LABEL BINARY CASE: one Check case of one binary; its log in $dir.
run() {
	local label=$1 bin=$2 case=$3 t0=$SECONDS log rc
	log="$dir/$label.$(basename "$bin").$case.log"
	CK_RUN_CASE=$case timeout -s KILL 300 "$bin" >"$log" 2>&1
	rc=$?
	echo "$label: $(basename "$bin") $case: rc $rc in $((SECONDS - t0)) s: $(grep -E '^[0-9]+%:' "$log")"
	grep -E 'swapouts' "$log" | sed "s/^/    /"
	if [ "$rc" != 0 ]; then
		grep -E ':[FE]:' "$log" | head -5
		tail -5 "$log"
		fail "$label: $(basename "$bin") $case"
	fi
	# a case that ran nothing (no test, or every combination skipped) proves nothing
	grep -qE '^100%: Checks: [1-9]' "$log" || fail "$label: $(basename "$bin") $case ran no checks"
}

suite() {
	local label=$1
	run "$label" "$TEST_ENGINE" big
	run "$label" "$TEST_ENGINE" hammer
	run "$label" "$TEST_ENGINE" errors
	run "$label" "$TEST_PAGEOUT_ERRORS" errors
	run "$label" "$TEST_PDAEMON" policy
}

# 1. nbdkit memory on a unix socket
# (the stats filter, when this nbdkit has it, proves the traffic)
stats=()
nbdkit --filter=stats null --version >/dev/null 2>&1 && stats=(--filter=stats)
nbdkit -f -U "$dir/nbdkit.sock" "${stats[@]}" memory 2G \
	${stats:+statsfile="$dir/nbdkit.stats"} 2>"$dir/nbdkit.log" &
server=$!
for _ in $(seq 100); do [ -S "$dir/nbdkit.sock" ] && break; sleep 0.05; done
[ -S "$dir/nbdkit.sock" ] || fail "nbdkit did not start: $(cat "$dir/nbdkit.log")"
UVMPAGER_TEST_SWAP="nbd+unix:///?socket=$dir/nbdkit.sock" UVMPAGER_TEST_IO=io_uring suite nbdkit
kill "$server"; wait "$server" 2>/dev/null; server=
# the stats filter writes its file when nbdkit exits
if [ -n "${stats:-}" ]; then
	written=$(awk '/^write:/ { print $2 }' "$dir/nbdkit.stats")
	echo "nbdkit stats: $(grep -E '^(read|write):' "$dir/nbdkit.stats" | tr '\n' ' ')"
	[ "${written:-0}" -gt 0 ] || fail "nothing written to nbdkit: $(cat "$dir/nbdkit.stats")"
fi

# 2. nbd-server exporting a sparse file, on a unix socket
truncate -s 2G "$dir/export.img"
cat >"$dir/nbd-server.conf" <<EOF
[generic]
	unixsock = $dir/nbd-server.sock
[swap]
	exportname = $dir/export.img
EOF
# It daemonizes (and -d would serve one connection only): its pid is the
# listener's, found by the socket's path.
nbd-server -C "$dir/nbd-server.conf" >"$dir/nbd-server.log" 2>&1 || fail "nbd-server: $(cat "$dir/nbd-server.log")"
for _ in $(seq 100); do [ -S "$dir/nbd-server.sock" ] && break; sleep 0.05; done
nbdsrv=$(ss -xlpn | awk -v s="$dir/nbd-server.sock" '$5 == s' | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
[ -n "$nbdsrv" ] || fail "nbd-server did not start: $(cat "$dir/nbd-server.log")"
UVMPAGER_TEST_SWAP="nbd+unix:///swap?socket=$dir/nbd-server.sock" UVMPAGER_TEST_IO=threads suite nbd-server
used=$(du -k "$dir/export.img" | cut -f1)
echo "nbd-server: export file has $used KiB allocated"
[ "$used" -gt 0 ] || fail "nothing written to nbd-server's export"
echo "PASS"
