#!/bin/bash
# Storage faults injected for real (issue 10): the daemon's swap file lives
# on failfs (failfs.c), a FUSE filesystem of our own that fails chosen byte
# ranges with EIO, writes short, returns ENOSPC past a size or stalls, on
# command through its .control file. The checking workload is hostile's
# reread (64 MiB filled, re-read and checked page by page) under the shim
# with a 16 MiB budget. Each case has a hard time limit: a hang fails.
#
# Environment: UVMPAGERD, UVMPAGER_PRELOAD, HOSTILE, FAILFS (built programs);
# FAULTS_CASES (default: all); FAULTS_SOAK=SECS: run each workload SECS
# seconds instead of a few (the soak mode); FAULTS_IO: io engines to run
# the I/O cases under (default: "io_uring threads").
# Exits 77 when it cannot run.
set -u

skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "uvmpagerd and FUSE mounts need root"
[ -e /dev/fuse ] || skip "no /dev/fuse"
for v in UVMPAGERD UVMPAGER_PRELOAD HOSTILE FAILFS; do
	[ -n "${!v:-}" ] && [ -e "${!v}" ] || skip "$v unset or not built"
done

soak=${FAULTS_SOAK:-0}
secs() { [ "$soak" -gt 0 ] && echo "$soak" || echo "$1"; }
ios=${FAULTS_IO:-io_uring threads}

dir=$(mktemp -d /var/tmp/uvmpager-faults-XXXXXX) || exit 1
daemon=
ffs=
prog=
passed=0
failed=0

stop_daemon() {
	if [ -n "$daemon" ]; then
		kill "$daemon" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
	fi
	daemon=
	umount -l "$dir/mnt" 2>/dev/null
}
stop_failfs() {
	if [ -n "$ffs" ]; then
		umount -l "$dir/ff" 2>/dev/null
		kill "$ffs" 2>/dev/null
		wait "$ffs" 2>/dev/null
	fi
	ffs=
}
cleanup() {
	[ -n "$prog" ] && kill -9 "$prog" 2>/dev/null
	stop_daemon
	stop_failfs
	umount -l "$dir/ro" 2>/dev/null
	umount -l "$dir/tmpfs" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# start_failfs: a fresh backing directory served at $dir/ff
start_failfs() {
	stop_failfs
	rm -rf "$dir/back"
	mkdir -p "$dir/back" "$dir/ff"
	"$FAILFS" "$dir/back" "$dir/ff" -f -o max_threads=64 >"$dir/failfs.log" 2>&1 &
	ffs=$!
	for _ in $(seq 50); do
		[ -e "$dir/ff/.control" ] && return 0
		kill -0 "$ffs" 2>/dev/null || break
		sleep 0.1
	done
	cat "$dir/failfs.log"
	echo "failfs did not start"
	return 1
}
ctl() { echo "$*" >"$dir/ff/.control"; }
ff_of() { awk -v k="$1" '$1 == k { print $2 }' "$dir/ff/.control" 2>/dev/null; }

# start_daemon SWAPFILE [flags...]: a fresh mount each time
start_daemon() {
	local swap=$1
	shift
	stop_daemon
	rm -f "$dir/sock"
	mkdir -p "$dir/mnt"
	"$UVMPAGERD" --foreground --swap-file "$swap" --socket "$dir/sock" \
		--mount "$dir/mnt" --budget 1G "$@" >"$dir/daemon.log" 2>&1 &
	daemon=$!
	for _ in $(seq 100); do
		[ -S "$dir/sock" ] && [ -r "$dir/mnt/stat" ] && return 0
		kill -0 "$daemon" 2>/dev/null || break
		sleep 0.1
	done
	cat "$dir/daemon.log"
	echo "uvmpagerd did not start ($*)"
	return 1
}

stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$dir/mnt/stat" 2>/dev/null; }

pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() {
	echo "FAIL $*"
	failed=$((failed + 1))
	echo "--- uvmpagerd log"
	tail -15 "$dir/daemon.log"
	echo "--- program"
	head -20 "$dir/out" 2>/dev/null
}

# shim_bg OUT PROG ARGS...: in the background; $prog is the program itself
shim_bg() {
	local out=$1
	shift
	env LD_PRELOAD="$UVMPAGER_PRELOAD" UVMPAGER_SOCKET="$dir/sock" UVMPAGER_BUDGET=16M "$@" \
		>"$out" 2>&1 &
	prog=$!
}

# wait_for FILE PATTERN SECS
wait_for() {
	for _ in $(seq $(($3 * 10))); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# wait_prog PID SECS: 0 when it ended in time (its status in $prog_rc)
prog_rc=
wait_prog() {
	for _ in $(seq $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -9 "$1"
		wait "$1" 2>/dev/null
		return 1
	fi
	wait "$1"
	prog_rc=$?
	return 0
}

result_of() { # FIELD FILE
	awk -v k="$1" '/^result/ { for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' "$2"
}

# 1. write-eio IO: writes to the first 32 MiB of the swap file fail with EIO
# (slot 0 is the header, written before the rule). The failed pages stay
# resident and dirty, their slots are marked bad, stat counts the errors,
# and reread ends with every page right (no SIGBUS: nothing was lost).
case_write_eio() {
	local io=$1 t
	t=$(secs 6)
	start_failfs || { fail "write-eio $io: no failfs"; return; }
	start_daemon "$dir/ff/swap" --swap-size 512M --io "$io" || { fail "write-eio $io: no daemon"; return; }
	ctl write-eio 4096 33554432
	shim_bg "$dir/out" "$HOSTILE" reread "$t"
	if ! wait_prog $prog $((t + 90)); then
		fail "write-eio $io: the program hangs"
		return
	fi
	local werr bad sig wrong
	werr=$(stat_of write_errors)
	bad=$(stat_of swap_slots_bad)
	sig=$(result_of sigbus "$dir/out")
	wrong=$(result_of wrong "$dir/out")
	if [ "$prog_rc" = 0 ] && [ "${sig:-x}" = 0 ] && [ "${wrong:-x}" = 0 ] &&
	   [ "${werr:-0}" -gt 0 ] && [ "${bad:-0}" -gt 0 ] && [ "$(stat_of swapouts)" -gt 0 ] &&
	   kill -0 "$daemon" 2>/dev/null; then
		pass "write-eio $io: $(grep result "$dir/out"); write_errors $werr swap_slots_bad $bad" \
			"swapouts $(stat_of swapouts) swapins $(stat_of swapins)" \
			"failfs injected_write $(ff_of injected_write)"
	else
		fail "write-eio $io: exit $prog_rc sigbus ${sig:-none} wrong ${wrong:-none}" \
			"write_errors ${werr:-none} swap_slots_bad ${bad:-none} swapouts $(stat_of swapouts)"
	fi
	stop_daemon
}

cases=${FAULTS_CASES:-write-eio}
for c in $cases; do
	case $c in
	write-eio) for io in $ios; do case_write_eio "$io"; done ;;
	*) echo "unknown case $c"; failed=$((failed + 1)) ;;
	esac
done

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
