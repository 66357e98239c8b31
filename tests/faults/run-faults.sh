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
	# shellcheck disable=SC2086
	[ -n "$prog" ] && kill -9 $prog 2>/dev/null
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
	t=$(secs 3)
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
	   kill -0 "$daemon" 2>/dev/null && grep -q "swap writes failing (Input/output error)" "$dir/daemon.log"; then
		pass "write-eio $io: $(grep result "$dir/out"); write_errors $werr swap_slots_bad $bad" \
			"swapouts $(stat_of swapouts) swapins $(stat_of swapins)" \
			"failfs injected_write $(ff_of injected_write); logged: $(grep -m1 'swap writes failing' "$dir/daemon.log" | sed 's/.*: swap/swap/')"
	else
		fail "write-eio $io: exit $prog_rc sigbus ${sig:-none} wrong ${wrong:-none}" \
			"write_errors ${werr:-none} swap_slots_bad ${bad:-none} swapouts $(stat_of swapouts)"
	fi
	stop_daemon
}

# 2. read-eio IO: once reread has filled its memory (most of it in swap),
# reads of the first 16 MiB of the swap file fail with EIO. Each page there
# raises SIGBUS in the program when touched (never zeros, never wrong
# data), the daemon logs the object and offset, and lives.
case_read_eio() {
	local io=$1 t
	t=$(secs 3)
	start_failfs || { fail "read-eio $io: no failfs"; return; }
	start_daemon "$dir/ff/swap" --swap-size 512M --io "$io" || { fail "read-eio $io: no daemon"; return; }
	shim_bg "$dir/out" "$HOSTILE" reread "$t"
	if ! wait_for "$dir/out" filled 60; then
		kill -9 $prog 2>/dev/null
		fail "read-eio $io: the program never filled its memory"
		return
	fi
	ctl read-eio 4096 16777216
	if ! wait_prog $prog $((t + 90)); then
		fail "read-eio $io: the program hangs"
		return
	fi
	local rerr sig wrong zeros logged
	rerr=$(stat_of read_errors)
	sig=$(result_of sigbus "$dir/out")
	wrong=$(result_of wrong "$dir/out")
	zeros=$(result_of zeros "$dir/out")
	logged=$(grep -m1 "unreadable (read error)" "$dir/daemon.log")
	if [ "$prog_rc" = 0 ] && [ "${sig:-0}" -gt 0 ] && [ "${wrong:-x}" = 0 ] && [ "${zeros:-x}" = 0 ] &&
	   [ "${rerr:-0}" -gt 0 ] && [ -n "$logged" ] && kill -0 "$daemon" 2>/dev/null; then
		pass "read-eio $io: $(grep result "$dir/out"); read_errors $rerr" \
			"failfs injected_read $(ff_of injected_read); logged: ${logged#*: }"
	else
		fail "read-eio $io: exit $prog_rc sigbus ${sig:-none} wrong ${wrong:-none}" \
			"read_errors ${rerr:-none} logged ${logged:-nothing}"
	fi
	stop_daemon
}

# 2b. read-one IO: one 4 KiB block of the swap file (slot 100) cannot be
# read. Only the page stored there may be lost (SIGBUS), not the pages read
# with it in the same read-around cluster: those must read right.
case_read_one() {
	local io=$1 t
	t=$(secs 3)
	start_failfs || { fail "read-one $io: no failfs"; return; }
	start_daemon "$dir/ff/swap" --swap-size 512M --io "$io" || { fail "read-one $io: no daemon"; return; }
	shim_bg "$dir/out" "$HOSTILE" reread "$t"
	if ! wait_for "$dir/out" filled 60; then
		kill -9 $prog 2>/dev/null
		fail "read-one $io: the program never filled its memory"
		return
	fi
	ctl read-eio 409600 413696
	if ! wait_prog $prog $((t + 90)); then
		fail "read-one $io: the program hangs"
		return
	fi
	local sig wrong rerr
	sig=$(result_of sigbus "$dir/out")
	wrong=$(result_of wrong "$dir/out")
	rerr=$(stat_of read_errors)
	if [ "$prog_rc" = 0 ] && [ "${sig:-x}" -le 1 ] && [ "${wrong:-x}" = 0 ] && [ "${rerr:-x}" -le 1 ]; then
		pass "read-one $io: $(grep result "$dir/out"); read_errors $rerr," \
			"failfs injected_read $(ff_of injected_read)"
	else
		fail "read-one $io: exit $prog_rc sigbus ${sig:-none} (at most 1) wrong ${wrong:-none}" \
			"read_errors ${rerr:-none}"
	fi
	stop_daemon
}

# 3a. short IO: every write stores at most 4 KiB of what it was given. The
# thread engine sees the short count and writes the rest: no error at all.
# io_uring's writes are asynchronous direct I/O, and the kernel's FUSE
# turns a short asynchronous direct write into EIO (fuse_aio_complete): the
# daemon sees a write error there, keeps the pages, marks the slots bad and
# writes them elsewhere. Either way the data stays right.
case_short() {
	local io=$1 t
	t=$(secs 3)
	start_failfs || { fail "short $io: no failfs"; return; }
	start_daemon "$dir/ff/swap" --swap-size 512M --io "$io" || { fail "short $io: no daemon"; return; }
	ctl short 4096
	shim_bg "$dir/out" "$HOSTILE" reread "$t"
	if ! wait_prog $prog $((t + 90)); then
		fail "short $io: the program hangs"
		return
	fi
	local sig wrong nshort
	sig=$(result_of sigbus "$dir/out")
	wrong=$(result_of wrong "$dir/out")
	nshort=$(ff_of injected_short)
	if [ "$prog_rc" = 0 ] && [ "${sig:-x}" = 0 ] && [ "${wrong:-x}" = 0 ] &&
	   [ "${nshort:-0}" -gt 0 ] && { [ "$io" = io_uring ] || [ "$(stat_of write_errors)" = 0 ]; } &&
	   [ "$(stat_of swapins)" -gt 0 ]; then
		pass "short $io: $(grep result "$dir/out"); failfs injected_short $nshort," \
			"write_errors $(stat_of write_errors), swapouts $(stat_of swapouts) swapins $(stat_of swapins)"
	else
		fail "short $io: exit $prog_rc sigbus ${sig:-none} wrong ${wrong:-none}" \
			"injected_short ${nshort:-none} write_errors $(stat_of write_errors)"
	fi
	stop_daemon
}

# 3b. enospc IO: the filesystem is full past 8 MiB of the (sparse) swap
# file: writes there fail with ENOSPC. The program keeps running over
# budget with every page right; stat counts the errors and the log says
# so; when space returns (the rule cleared mid-run) pages go to swap again
# without anyone's help and the log says that too.
case_enospc() {
	local io=$1 t
	t=$(secs 5)
	start_failfs || { fail "enospc $io: no failfs"; return; }
	start_daemon "$dir/ff/swap" --swap-size 512M --io "$io" || { fail "enospc $io: no daemon"; return; }
	ctl enospc 8388608
	shim_bg "$dir/out" "$HOSTILE" reread "$t"
	if ! wait_for "$dir/out" filled 60; then
		kill -9 $prog 2>/dev/null
		fail "enospc $io: the program never filled its memory"
		return
	fi
	sleep 2
	local werr over res_full outs_full
	werr=$(stat_of write_errors)
	over=$(stat_of budget_overruns)
	res_full=$(stat_of resident_bytes)
	outs_full=$(stat_of swapouts)
	ctl clear
	if ! wait_prog $prog $((t + 90)); then
		fail "enospc $io: the program hangs"
		return
	fi
	local sig wrong outs_after
	sig=$(result_of sigbus "$dir/out")
	wrong=$(result_of wrong "$dir/out")
	outs_after=$(stat_of swapouts)
	if [ "$prog_rc" = 0 ] && [ "${sig:-x}" = 0 ] && [ "${wrong:-x}" = 0 ] &&
	   [ "${werr:-0}" -gt 0 ] && [ "$outs_after" -gt "$outs_full" ] &&
	   grep -q "swap writes failing" "$dir/daemon.log" && grep -q "swap writes succeed again" "$dir/daemon.log"; then
		pass "enospc $io: $(grep result "$dir/out"); while full: write_errors $werr" \
			"budget_overruns $over resident_bytes $res_full swapouts $outs_full;" \
			"after: swapouts $outs_after; failfs injected_enospc $(ff_of injected_enospc);" \
			"logged: $(grep -m1 'swap writes failing' "$dir/daemon.log" | sed 's/.*: swap/swap/')" \
			"/ $(grep -m1 'swap writes succeed again' "$dir/daemon.log" | sed 's/.*: swap/swap/')"
	else
		fail "enospc $io: exit $prog_rc sigbus ${sig:-none} wrong ${wrong:-none} write_errors ${werr:-none}" \
			"budget_overruns ${over:-none} swapouts $outs_full then $outs_after"
	fi
	stop_daemon
}

# 3c. swap-full IO: a swap file of 8 MiB under 64 MiB of data (48 MiB over
# the program's budget): the slots run out. The program keeps running over
# budget with every page right; stat counts swap_full and the log says so.
case_swap_full() {
	local io=$1 t
	t=$(secs 3)
	start_failfs || { fail "swap-full $io: no failfs"; return; }
	start_daemon "$dir/ff/swap" --swap-size 8M --io "$io" || { fail "swap-full $io: no daemon"; return; }
	shim_bg "$dir/out" "$HOSTILE" reread "$t"
	if ! wait_prog $prog $((t + 90)); then
		fail "swap-full $io: the program hangs"
		return
	fi
	local sig wrong full logged
	sig=$(result_of sigbus "$dir/out")
	wrong=$(result_of wrong "$dir/out")
	full=$(stat_of swap_full_events)
	logged=$(grep -m1 "swap writes failing" "$dir/daemon.log")
	if [ "$prog_rc" = 0 ] && [ "${sig:-x}" = 0 ] && [ "${wrong:-x}" = 0 ] &&
	   [ "${full:-0}" -gt 0 ] && [ -n "$logged" ]; then
		pass "swap-full $io: $(grep result "$dir/out"); swap_full_events $full budget_overruns" \
			"$(stat_of budget_overruns) swapouts $(stat_of swapouts); logged: ${logged#*: }"
	else
		fail "swap-full $io: exit $prog_rc sigbus ${sig:-none} wrong ${wrong:-none}" \
			"swap_full ${full:-none} logged ${logged:-nothing}"
	fi
	stop_daemon
}

# 4. stall IO: every swap read and write waits 4 s. A program working
# through swap (budget 16 MiB) and one whose 64 MiB are resident (budget
# 128 MiB) run meanwhile: the resident one must keep going (its longest
# gap between two passes over its memory is measured), the daemon's stat
# file must answer, and the swapping one must end with all its data right.
case_stall() {
	local io=$1 t stall=4 a b
	t=$(secs 8)
	start_failfs || { fail "stall $io: no failfs"; return; }
	start_daemon "$dir/ff/swap" --swap-size 512M --io "$io" || { fail "stall $io: no daemon"; return; }
	shim_bg "$dir/out" "$HOSTILE" reread "$t"
	a=$prog
	env LD_PRELOAD="$UVMPAGER_PRELOAD" UVMPAGER_SOCKET="$dir/sock" UVMPAGER_BUDGET=128M \
		HOSTILE_PROGRESS=1 "$HOSTILE" reread "$t" >"$dir/out.resident" 2>&1 &
	b=$!
	prog="$a $b"
	if ! wait_for "$dir/out" filled 60 || ! wait_for "$dir/out.resident" filled 60; then
		kill -9 $a $b 2>/dev/null
		fail "stall $io: the programs never filled their memory"
		return
	fi
	sleep 1
	local s0 s1 stat_ms
	s0=$(awk '{ print $1 }' /proc/uptime)
	ctl stall $stall
	sleep 0.5
	local t0=$EPOCHREALTIME
	if [ -n "${FAULTS_DEBUG:-}" ]; then
		(sleep 1; for t in /proc/$daemon/task/*; do echo "$(cat $t/comm) $(cat $t/wchan)"; cat $t/stack; done > "$dir/../faults-stacks.txt" 2>&1) &
	fi
	timeout 5 cat "$dir/mnt/stat" >/dev/null
	local stat_rc=$?
	stat_ms=$(echo "$t0 $EPOCHREALTIME" | awk '{ printf "%d", ($2 - $1) * 1000 }')
	local okb=0 oka=0
	wait_prog $b $((t + 90)) && okb=1
	local rcb=$prog_rc
	wait_prog $a $((t + 90)) && oka=1
	local rca=$prog_rc
	prog=
	# the resident program's longest gap between passes, from when it filled
	local gap sig wrong passes_b stalled
	gap=$(awk '/^pass/ { if (last) { g = $4 - last; if (g > max) max = g } last = $4 } END { printf "%.2f", max }' \
		"$dir/out.resident")
	sig=$(result_of sigbus "$dir/out")
	wrong=$(result_of wrong "$dir/out")
	passes_b=$(result_of passes "$dir/out.resident")
	stalled=$(ff_of stalled)
	# io_uring issues a write inline in io_uring_enter and blocks there
	# once FUSE's background queue (12) is full of stalled requests: only
	# the ring's own thread submits (ioeng_uring.c), so stat (and every
	# fault that needs the engine lock) answers at once, as under threads.
	# Before, the submitter held the engine lock: stat took 3.6 s of 4.
	local stat_limit=1000
	if [ $oka = 1 ] && [ $okb = 1 ] && [ "$rca" = 0 ] && [ "$rcb" = 0 ] &&
	   [ "${sig:-x}" = 0 ] && [ "${wrong:-x}" = 0 ] && [ "$stat_rc" = 0 ] && [ "$stat_ms" -lt $stat_limit ] &&
	   [ "${stalled:-0}" -gt 0 ] && awk -v g="$gap" 'BEGIN { exit !(g < 1.5) }'; then
		pass "stall $io: ${stall} s stall, $stalled requests held; swapping program: $(grep result "$dir/out");" \
			"resident program: $passes_b passes, longest gap between passes $gap s;" \
			"stat answered in $stat_ms ms during the stall"
	else
		fail "stall $io: swapping ended ${oka} exit ${rca:-none} sigbus ${sig:-none} wrong ${wrong:-none};" \
			"resident ended $okb exit ${rcb:-none} longest gap $gap s; stat rc $stat_rc in $stat_ms ms; stalled ${stalled:-none}"
		head -5 "$dir/out.resident"
	fi
	stop_daemon
}

# start_fails NAME PATTERN DAEMON-ARGS...: the daemon must exit non-zero
# within 20 s, with an error line naming the file and matching PATTERN
start_fails() {
	local name=$1 pat=$2 rc line
	shift 2
	stop_daemon
	mkdir -p "$dir/mnt"
	timeout 20 "$UVMPAGERD" --foreground --socket "$dir/sock" --mount "$dir/mnt" --budget 64M \
		"$@" >"$dir/daemon.log" 2>&1
	rc=$?
	line=$(grep -m1 "error:" "$dir/daemon.log")
	umount -l "$dir/mnt" 2>/dev/null
	if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [[ "$line" == *"$swap"* ]] && [[ "$line" == *$pat* ]]; then
		pass "start $name: exit $rc, \"$line\""
	else
		fail "start $name: exit $rc, wanted an error naming $swap and saying $pat"
	fi
}

# left_nothing NAME: a start that failed must not leave a half-made swap file
left_nothing() {
	if [ -e "$dir/back/swap" ]; then
		fail "start $1: a half-made swap file was left ($(stat -c %s "$dir/back/swap") bytes)"
		rm -f "$dir/back/swap"
	fi
}

# start_warns NAME PATTERN DAEMON-ARGS...: the daemon starts and warns
start_warns() {
	local name=$1 pat=$2 line
	shift 2
	if ! start_daemon "$@"; then
		fail "start $name: no daemon"
		return
	fi
	line=$(grep -m1 "warning: swap file" "$dir/daemon.log")
	if [[ "$line" == *$pat* ]]; then
		pass "start $name: starts, \"$line\""
	else
		fail "start $name: no warning saying $pat"
	fi
	stop_daemon
}

# 5. the swap file at start: on a full filesystem (sparse, preallocated,
# and one with less room than the sparse file may need), on a read-only
# filesystem (file missing, file there), on tmpfs. Each says what file and
# why, and the daemon refuses to start, or starts and warns where it can
# still work.
case_start() {
	local swap
	start_failfs || { fail "start: no failfs"; return; }
	swap=$dir/ff/swap
	ctl enospc 1
	start_fails "full disk, sparse" "No space left on device" --swap-file "$swap" --swap-size 64M
	left_nothing "full disk, sparse"
	start_fails "full disk, preallocated" "not enough space" --swap-file "$swap" --swap-size 64M \
		--swap-preallocate
	left_nothing "full disk, preallocated"
	ctl clear
	ctl nodirect
	start_fails "no O_DIRECT" "does not support O_DIRECT" --swap-file "$swap" --swap-size 64M
	rm -f "$dir/back/swap"
	ctl clear
	ctl enospc 8388608
	start_warns "8 MiB free, 64 MiB sparse" "has 8 MiB free" "$swap" --swap-size 64M
	ctl clear
	stop_failfs

	mkdir -p "$dir/ro"
	if mount -t tmpfs -o size=70M tmpfs "$dir/ro"; then
		truncate -s 64M "$dir/ro/there"
		mount -o remount,ro "$dir/ro"
		swap=$dir/ro/swap
		start_fails "read-only, missing" "Read-only file system" --swap-file "$swap" --swap-size 64M
		swap=$dir/ro/there
		start_fails "read-only, there" "Read-only file system" --swap-file "$swap"
		umount "$dir/ro"
		# tmpfs has taken O_DIRECT since Linux 6.6: there it starts and warns
		mount -t tmpfs -o size=70M tmpfs "$dir/ro"
		swap=$dir/ro/swap
		if start_daemon "$swap" --swap-size 64M; then
			stop_daemon
			start_warns "tmpfs" "is on tmpfs" "$swap" --swap-size 64M
		else
			start_fails "tmpfs" "does not support O_DIRECT" --swap-file "$swap" --swap-size 64M
		fi
		umount "$dir/ro"
	else
		fail "start: cannot mount a tmpfs"
	fi
}

cases=${FAULTS_CASES:-start write-eio read-eio read-one short enospc swap-full stall}
for c in $cases; do
	case $c in
	start) case_start ;;
	write-eio) for io in $ios; do case_write_eio "$io"; done ;;
	read-eio) for io in $ios; do case_read_eio "$io"; done ;;
	read-one) for io in $ios; do case_read_one "$io"; done ;;
	short) for io in $ios; do case_short "$io"; done ;;
	enospc) for io in $ios; do case_enospc "$io"; done ;;
	swap-full) for io in $ios; do case_swap_full "$io"; done ;;
	stall) for io in $ios; do case_stall "$io"; done ;;
	*) echo "unknown case $c"; failed=$((failed + 1)) ;;
	esac
done

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
