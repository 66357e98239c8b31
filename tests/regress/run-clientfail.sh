#!/bin/bash
# Client and daemon failures injected for real (issue 10), against a
# uvmpagerd of our own (16 MiB budget, swap file and mount in a temp dir):
#
#  1. kills: programs under the shim SIGKILLed (with their forked children)
#     after a seeded random delay of 0-300 ms, in a loop: mid-registration
#     and first faults (hostile churn, killed from its start), mid-fork,
#     mid-mremap, mid-fault (churn killed once its loop runs), mid-fault
#     and mid-pageout (hostile reread killed while it fills 64 MiB).
#     Afterwards the daemon's stat is back to zero (clients, objects,
#     resident, dirty, swapped, slots used), its fd count is back to the
#     baseline, its RSS within RSS_SLACK_KB of it, and a fresh client
#     gets its data right. While that daemon settles (up to 30 s: a
#     killed fork's clones live FORK_TTL_NS), part 2 runs against a
#     second daemon of its own.
#  2. fences: a client SIGSTOPped with dirty managed memory, then one with
#     only its agent thread stopped (ptrace), while another client under the
#     same daemon re-reads 64 MiB: its longest gap between passes must stay
#     under STALL_MAX_S (the daemon waits FENCE_TIMEOUT_MS, 2 s, for a fence
#     reply: src/daemon/server_impl.h). The stopped client, let go, must
#     find its data whole.
#  3. the daemon SIGKILLed under 4 re-reading clients, ROUNDS times: each
#     client ends on time with its data right or SIGBUS (never wrong data,
#     zeros or a hang); a restarted daemon on the same socket and mount
#     clears the stale mount and serves a new client.
#
# Environment: UVMPAGERD, UVMPAGER_PRELOAD, HOSTILE (as run-hostile.sh);
# CLIENTFAIL_SEED (default: random, printed), CLIENTFAIL_ITERATIONS (200;
# the loop also ends after 25 s, ~60-100 iterations on 2 shared cores),
# CLIENTFAIL_SOAK=SECS (kill loop for SECS, no iteration limit),
# CLIENTFAIL_PARTS (default "kills fences daemon-kill").
# Exits 77 when it cannot run.
set -u

skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "uvmpagerd needs root"
[ -n "${UVMPAGERD:-}" ] && [ -x "$UVMPAGERD" ] || skip "UVMPAGERD unset or not built"
[ -n "${UVMPAGER_PRELOAD:-}" ] && [ -f "$UVMPAGER_PRELOAD" ] || skip "UVMPAGER_PRELOAD unset or not built"
[ -n "${HOSTILE:-}" ] && [ -x "$HOSTILE" ] || skip "HOSTILE unset or not built"
[ -e /dev/fuse ] || skip "no /dev/fuse for the daemon's stat file"
[ -e /dev/userfaultfd ] || skip "no /dev/userfaultfd"
command -v python3 >/dev/null || skip "no python3 (stops an agent thread with ptrace)"

seed=${CLIENTFAIL_SEED:-$(( $(od -An -N2 -tu2 /dev/urandom) ))}
iterations=${CLIENTFAIL_ITERATIONS:-200}
loop_secs=25
if [ -n "${CLIENTFAIL_SOAK:-}" ]; then
	loop_secs=$CLIENTFAIL_SOAK
	iterations=1000000000
fi
parts=${CLIENTFAIL_PARTS:-kills fences daemon-kill}
STALL_MAX_S=5          # 2 s fence timeout, plus a pass, plus scheduling
OTHER_MAX_S=12         # the other client re-reads 6 s (its fill takes ~2 s alone)
RSS_SLACK_KB=8192      # allocator caches; a leak per client would be far more
ROUNDS=3               # of the daemon kill
SETTLE_S=40            # an unadopted fork's clones live FORK_TTL_NS (30 s)
echo "seed $seed (CLIENTFAIL_SEED=$seed reproduces the kill delays)"

dir=$(mktemp -d /var/tmp/uvmpager-clientfail-XXXXXX) || exit 1
top_dir=$dir
daemon=
settling_daemon= settling_dir=   # the kills' daemon while the fences run beside it
fences_done=0
passed=0
failed=0
known=0
bg=()   # every program started in the background, killed at exit

stop_daemon() {
	if [ -n "$daemon" ]; then
		kill "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
	fi
	daemon=
	umount -l "$dir/mnt" 2>/dev/null
}
cleanup() {
	for p in "${bg[@]}"; do kill -9 -- "-$p" "$p" 2>/dev/null; done
	[ -n "$daemon" ] && kill -CONT "$daemon" 2>/dev/null
	stop_daemon
	if [ -n "$settling_daemon" ]; then
		kill "$settling_daemon" 2>/dev/null
		wait "$settling_daemon" 2>/dev/null
		umount -l "$settling_dir/mnt" 2>/dev/null
	fi
	rm -rf "$top_dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# start_daemon [keep]: a fresh swap file each time, unless "keep" (a
# restart after a kill: the same socket path and the stale mount)
start_daemon() {
	[ "${1:-}" = keep ] || { stop_daemon; rm -f "$dir/swap" "$dir/sock"; }
	mkdir -p "$dir/mnt" 2>/dev/null
	"$UVMPAGERD" --foreground --swap-file "$dir/swap" --swap-size 1G --socket "$dir/sock" \
		--mount "$dir/mnt" --budget 16M >>"$dir/daemon.log" 2>&1 &
	daemon=$!
	for _ in $(seq 100); do
		[ -S "$dir/sock" ] && [ -r "$dir/mnt/stat" ] && kill -0 "$daemon" 2>/dev/null && return 0
		kill -0 "$daemon" 2>/dev/null || break
		sleep 0.1
	done
	tail -20 "$dir/daemon.log"
	echo "uvmpagerd did not start"
	daemon=
	return 1
}

stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$dir/mnt/stat" 2>/dev/null; }
fd_count() { ls "/proc/$daemon/fd" 2>/dev/null | wc -l; }
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$daemon/status"; }

pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() {
	echo "FAIL $*"
	failed=$((failed + 1))
	echo "--- uvmpagerd log"
	tail -15 "$dir/daemon.log"
}
known_defect() { echo "KNOWN DEFECT $*"; known=$((known + 1)); }

# start_bg OUT BUDGET PROG ARGS...: under the shim, in a process group of
# its own (setsid execs in place: $! is the program), so that a kill of
# the group reaches its forked children too; sets $pid
start_bg() {
	local out=$1 budget=$2
	shift 2
	setsid env LD_PRELOAD="$UVMPAGER_PRELOAD" UVMPAGER_SOCKET="$dir/sock" \
		UVMPAGER_BUDGET="$budget" UVMPAGER_SEGMENT_SIZE=1M "$@" >"$out" 2>&1 &
	pid=$!
	bg+=("$pid")
}

# wait_for FILE PATTERN SECS
wait_for() {
	local n=$(($3 * 50))
	while [ $n -gt 0 ]; do
		grep -q "$2" "$1" 2>/dev/null && return 0
		n=$((n - 1))
		sleep 0.02
	done
	return 1
}

# bounded_wait PID SECS: 0 if it ended in time (its status in $status)
bounded_wait() {
	local end=$((SECONDS + $2))
	while kill -0 "$1" 2>/dev/null; do
		# a zombie is done: wait reaps it below
		[ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ] && break
		[ $SECONDS -ge $end ] && return 1
		sleep 0.05
	done
	{ wait "$1"; } 2>/dev/null
	status=$?
	return 0
}

# the daemon's state where clients leave traces
leftovers() {
	local out= k v
	for k in clients objects resident_bytes dirty_bytes swapped_bytes swap_slots_used; do
		v=$(stat_of $k)
		[ "$v" = 0 ] || out="$out $k=${v:-?}"
	done
	echo "$out"
}

# --- 1. clients killed at random points ---------------------------------------
part_kills() {
	local fd0 rss0 fd1 rss1 i=0 kills=0 finished=0 kind delay end left t0 out
	local -a kinds=(churn-start churn-loop reread-fill)
	local -A per=()

	start_daemon || { fail "kills: no daemon"; return; }
	# warm-up: first-use allocations of the daemon belong to its baseline
	start_bg "$dir/warm" 8M "$HOSTILE" churn 1
	bounded_wait "$pid" 60 && [ "$status" = 0 ] || { fail "kills: warm-up client: $(cat "$dir/warm")"; return; }
	sleep 0.5
	fd0=$(fd_count)
	rss0=$(rss_kb)
	echo "kills: daemon $daemon baseline: $fd0 fds, VmRSS $rss0 kB; loop of $iterations or ${loop_secs} s"
	RANDOM=$seed
	end=$((SECONDS + loop_secs))
	# bash reports every killed job on stderr: not ours to read
	{ while [ $i -lt "$iterations" ] && [ $SECONDS -lt $end ]; do
		kind=${kinds[$((RANDOM % 3))]}
		delay=$((RANDOM % 301))
		out="$dir/k.out"
		case $kind in
		churn-start) start_bg "$out" 8M "$HOSTILE" churn 30 ;;
		churn-loop) start_bg "$out" 8M "$HOSTILE" churn 30
			wait_for "$out" started 20 ;;
		reread-fill) start_bg "$out" 16M "$HOSTILE" reread 30 ;;
		esac
		sleep "$(printf '0.%03d' "$delay")"
		# the group: forked children too; the program: a kill that
		# comes before setsid(2) ran (no group yet, no children either)
		kill -9 -- "-$pid" "$pid" 2>/dev/null
		if ! bounded_wait "$pid" 10; then
			fail "kills: iteration $i ($kind, ${delay} ms): program $pid survives SIGKILL for 10 s" \
				"($(cat /proc/"$pid"/wchan 2>/dev/null))"
			return
		fi
		unset 'bg[-1]'
		case $status in
		137) kills=$((kills + 1)) ;;
		0) finished=$((finished + 1)) ;;
		*) fail "kills: iteration $i ($kind, ${delay} ms): exit $status"; head -5 "$out"; return ;;
		esac
		per[$kind]=$((${per[$kind]:-0} + 1))
		if ! kill -0 "$daemon" 2>/dev/null; then
			fail "kills: the daemon died at iteration $i ($kind, ${delay} ms)"
			return
		fi
		i=$((i + 1))
	done; } 2>>"$dir/jobs.log"
	echo "kills: $i iterations in $((SECONDS - end + loop_secs)) s: $kills killed, $finished finished" \
		"(churn-start ${per[churn-start]:-0}, churn-loop ${per[churn-loop]:-0}, reread-fill ${per[reread-fill]:-0})"
	# settle: an unadopted fork's clones are dropped after FORK_TTL_NS
	t0=$SECONDS
	sleep 1
	left=$(leftovers)
	echo "kills: 1 s after the last kill:${left:- nothing left}, $(fd_count) fds"
	# this daemon only waits for that (up to 30 s): the fences part runs
	# meanwhile, against a daemon of its own in a directory of its own
	case " $parts " in
	*" fences "*) [ "$fences_done" = 1 ] || fences_beside ;;
	esac
	while [ $((SECONDS - t0)) -lt $SETTLE_S ]; do
		left=$(leftovers)
		[ -z "$left" ] && [ "$(fd_count)" -le "$fd0" ] && break
		sleep 0.5
	done
	left=$(leftovers)
	sleep 0.5
	fd1=$(fd_count)
	rss1=$(rss_kb)
	fig_kills="iterations $i, killed $kills, settled in $((SECONDS - t0)) s, fds $fd0 -> $fd1, VmRSS $rss0 -> $rss1 kB"
	if [ -n "$left" ]; then
		fail "kills: stat not back to zero after $SETTLE_S s:$left"
		cat "$dir/mnt/stat" | grep -E '^(clients|objects|resident|dirty|swapped|swap_slots)'
		ls -l "/proc/$daemon/fd"
		return
	fi
	if [ "$fd1" -ne "$fd0" ]; then
		fail "kills: fd count $fd0 -> $fd1"
		ls -l "/proc/$daemon/fd"
		return
	fi
	if [ $((rss1 - rss0)) -gt $RSS_SLACK_KB ]; then
		fail "kills: VmRSS $rss0 -> $rss1 kB (slack $RSS_SLACK_KB kB)"
		return
	fi
	# a fresh client still gets its data right
	start_bg "$dir/fresh" 8M "$HOSTILE" churn 2
	if bounded_wait "$pid" 60 && [ "$status" = 0 ]; then
		fig_fresh=$(grep result "$dir/fresh")
		pages_verified=$((pages_verified + $(awk '/^result/ { print $8 }' "$dir/fresh")))
		pass "kills: $fig_kills; fresh client: $fig_fresh"
	else
		fail "kills: fresh client after the loop: exit ${status:-hang}"
		head -5 "$dir/fresh"
	fi
	unset 'bg[-1]'
}

# CLOCK_MONOTONIC, the clock of hostile's progress lines
mono() { python3 -c 'import time; print("%.3f" % time.monotonic())'; }

# max_gap FILE T0: the longest time without progress, from T0 (its start) to the fill,
# from there pass to pass, and from the last one to now (when killed)
max_gap() {
	awk -v t0="$2" -v now="$(mono)" -v done="$(grep -c '^result' "$1")" '
	    function step(t) { g = t - prev; if (g > max) max = g; prev = t }
	    BEGIN { prev = t0 }
	    /^filled at/ { step($3) }
	    /^pass/ { step($4) }
	    END { if (!done) step(now); printf "%.3f\n", max }' "$1"
}

# ptrace_stop TID: a helper holds the thread in a ptrace stop (the other
# threads of its process run on) until it is killed; sets $stopper
ptrace_stop() {
	python3 - "$1" >"$dir/stopper" 2>&1 <<'PY' &
import ctypes, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
tid = int(sys.argv[1])
PTRACE_SEIZE, PTRACE_INTERRUPT = 0x4206, 0x4207
if libc.ptrace(PTRACE_SEIZE, tid, None, None) < 0 or libc.ptrace(PTRACE_INTERRUPT, tid, None, None) < 0:
    print("ptrace:", os.strerror(ctypes.get_errno()), flush=True)
    sys.exit(1)
os.waitpid(tid, 0x40000000)   # __WALL
print("stopped", flush=True)
time.sleep(3600)              # our exit detaches it
PY
	stopper=$!
}

# fence_case HOW: a victim with dirty managed memory stopped (HOW: sigstop,
# or agent: its agent thread only), another client re-reading meanwhile
fence_case() {
	local how=$1 victim gap starved=no vres ostatus tids agent t0 vpasses
	start_daemon || { fail "fences $how: no daemon"; return; }
	start_bg "$dir/victim" 16M env HOSTILE_PROGRESS=1 "$HOSTILE" reread 60
	victim=$pid
	if ! wait_for "$dir/victim" filled 60; then
		fail "fences $how: the victim never filled its memory"
		return
	fi
	if [ "$how" = sigstop ]; then
		kill -STOP "$victim"
	else
		# the agent is the first thread the shim starts (src/client/agent.c)
		tids=$(ls "/proc/$victim/task" | sort -n)
		agent=$(echo "$tids" | awk -v p="$victim" '$1 != p' | head -1)
		ptrace_stop "$agent"
		if ! wait_for "$dir/stopper" stopped 5; then
			fail "fences $how: could not stop thread $agent: $(cat "$dir/stopper")"
			return
		fi
	fi
	echo "fences $how: victim $victim stopped, dirty_bytes $(stat_of dirty_bytes), resident_bytes $(stat_of resident_bytes)"
	# the other client's working set alone is over the budget: the daemon
	# must evict the victim's pages too, and fence it
	t0=$(mono)
	vpasses=$(grep -c ^pass "$dir/victim")
	status=
	start_bg "$dir/other" 16M env HOSTILE_PROGRESS=1 "$HOSTILE" reread 6
	if ! bounded_wait "$pid" $OTHER_MAX_S; then
		kill -9 -- "-$pid"
		wait "$pid" 2>/dev/null
		starved=yes
	fi
	ostatus=${status:-}
	unset 'bg[-1]'
	gap=$(max_gap "$dir/other" "$t0")
	awk -v g="$gap" -v m=$STALL_MAX_S 'BEGIN { exit !(g > m) }' && starved=yes
	if [ -n "$ostatus" ] && [ "$ostatus" != 0 ]; then
		fail "fences $how: the other client exit $ostatus: $(head -3 "$dir/other")"
		starved=no
	fi
	# let the victim go on: it must read its data back whole
	if [ "$how" = sigstop ]; then
		kill -CONT "$victim"
	else
		kill "$stopper"; wait "$stopper" 2>/dev/null
	fi
	# two whole passes over its 64 MiB after it was let go, then it is killed
	if ! wait_for "$dir/victim" "^pass $((vpasses + 2)) " 60; then
		fail "fences $how: the victim makes no 2 passes in 60 s once let go"
		return
	fi
	kill -9 "$victim"
	wait "$victim" 2>/dev/null
	unset 'bg[-1]'
	if grep -q wrong "$dir/victim"; then
		fail "fences $how: the victim, let go, reads wrong data: $(grep -m3 wrong "$dir/victim")"
		return
	fi
	vres="2 passes over 64 MiB right after it was let go"
	pages_verified=$((pages_verified + 2 * 16384))
	if [ $starved = yes ]; then
		fig_fence="$fig_fence $how: other client starved ($(grep -c ^pass "$dir/other") passes in $OTHER_MAX_S s, $gap s without progress);"
		fail "fences $how: while the victim is stopped, another client under the same daemon" \
			"makes $(grep -c ^pass "$dir/other") passes in $OTHER_MAX_S s ($(grep -c filled "$dir/other") fills);" \
			"longest time without progress $gap s (bound $STALL_MAX_S s; evictions $(stat_of evictions))." \
			"Victim: $vres"
		return
	fi
	fig_fence="$fig_fence $how: max stall $gap s, $(grep -c ^pass "$dir/other") passes;"
	if [ "$ostatus" = 0 ] && \
	   awk -v g="$gap" -v m=$STALL_MAX_S 'BEGIN { exit !(g <= m) }'; then
		pass "fences $how: other client: $(grep result "$dir/other"), longest stall $gap s" \
			"(bound $STALL_MAX_S s); victim: $vres"
		pages_verified=$((pages_verified + $(awk '/^result/ { n += $6 } END { print n + 0 }' "$dir/other")))
	else
		fail "fences $how: other exit $ostatus, longest stall $gap s (bound $STALL_MAX_S s);" \
			"victim: $vres"
		head -3 "$dir/other"
	fi
}

part_fences() {
	fence_case sigstop
	fence_case agent
	fences_done=1
}

# the fences part in $dir/side with a daemon of its own, while the kills'
# daemon (idle but for dropping clones) settles
fences_beside() {
	local main_dir=$dir
	settling_daemon=$daemon settling_dir=$dir
	dir=$main_dir/side daemon=
	mkdir -p "$dir"
	echo "fences: run while the kills' daemon settles, against a daemon of their own"
	part_fences
	stop_daemon
	dir=$main_dir daemon=$settling_daemon
	settling_daemon= settling_dir=
}

# --- 3. the daemon SIGKILLed under several clients -----------------------------
part_daemon_kill() {
	local round c st hung bad sig t0 res
	local -a pids
	start_daemon || { fail "daemon-kill: no daemon"; return; }
	for round in $(seq "$ROUNDS"); do
		pids=()
		for c in 1 2 3 4; do
			start_bg "$dir/dk.$c" 16M "$HOSTILE" reread 5
			pids+=("$pid")
		done
		for c in 1 2 3 4; do
			wait_for "$dir/dk.$c" filled 60 || break
		done
		sleep 0.$((RANDOM % 10))
		kill -9 "$daemon"
		wait "$daemon" 2>/dev/null
		daemon=
		t0=$SECONDS
		hung=0 bad=0 sig=0
		for c in 1 2 3 4; do
			# 5 s of re-reading plus a margin; a spinning agent never ends
			if ! bounded_wait "${pids[$((c - 1))]}" 30; then
				hung=$((hung + 1))
				kill -9 "${pids[$((c - 1))]}"
				continue
			fi
			res=$(grep result "$dir/dk.$c")
			if [ "$status" != 0 ] || [ -z "$res" ]; then
				bad=$((bad + 1))
				echo "daemon-kill round $round client $c: exit $status: $(head -3 "$dir/dk.$c")"
				continue
			fi
			sig=$((sig + $(echo "$res" | awk '{ print $8 }')))
			pages_verified=$((pages_verified + $(echo "$res" | awk '{ print $6 }')))
		done
		bg=()
		dk_sigbus=$((dk_sigbus + sig))
		if [ $hung -gt 0 ] || [ $bad -gt 0 ]; then
			fail "daemon-kill round $round: $hung clients hang, $bad wrong or failed"
			return
		fi
		echo "daemon-kill round $round: 4 clients ended right $((SECONDS - t0)) s after the kill, $sig pages SIGBUS"
		# the restart finds the stale socket and the dead mount
		if ! start_daemon keep; then
			fail "daemon-kill round $round: no restart on the stale socket and mount"
			return
		fi
	done
	start_bg "$dir/dk.fresh" 8M "$HOSTILE" churn 2
	if bounded_wait "$pid" 60 && [ "$status" = 0 ] && [ "$(stat_of clients)" = 0 ]; then
		pass "daemon-kill: $ROUNDS rounds x 4 clients, $dk_sigbus pages SIGBUS, none wrong or hung;" \
			"restarted daemon served: $(grep result "$dir/dk.fresh")"
	else
		fail "daemon-kill: the restarted daemon's client: exit ${status:-hang}"
		head -5 "$dir/dk.fresh"
	fi
	bg=()
}

fig_kills=none fig_fresh= fig_fence= pages_verified=0 dk_sigbus=0
t_start=$SECONDS
for p in $parts; do
	case $p in
	kills) part_kills ;;
	fences) [ "$fences_done" = 1 ] || part_fences ;;
	daemon-kill) part_daemon_kill ;;
	*) echo "unknown part $p"; failed=$((failed + 1)) ;;
	esac
done
stop_daemon
echo "--- figures (seed $seed, $((SECONDS - t_start)) s)"
echo "kills: $fig_kills"
echo "fences:${fig_fence:- none}"
echo "daemon kills: $ROUNDS rounds x 4 clients, $dk_sigbus pages SIGBUS"
echo "page checks passed (a page read and compared, each pass): $pages_verified"
echo "$passed passed, $failed failed, $known known defects"
[ "$failed" -eq 0 ]
