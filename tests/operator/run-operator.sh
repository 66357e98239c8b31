#!/usr/bin/env bash
# What surprised a new operator (issue 12), one check each: a second
# daemon, mount points, budgets, booleans, the socket group, the config
# path, per-client logging, and the command-line conventions of every
# program. Needs root and /dev/fuse (else 77).
set -u
. "$(dirname "$0")/lib.sh"
require_root
work=$(mktemp -d /var/tmp/uvmpager-operator-XXXXXX)
cleanup() {
	for n in a b c; do daemon_stop $n >/dev/null 2>&1; done
	for m in "$work"/*/mnt "$work"/deep/x/y/mnt; do umount -l "$m" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap - EXIT
export UVMPAGER_PRELOAD

# --- every program: -h/--help, -V/--version, "Try --help", exit codes ---
for prog in "$UVMPAGERD" "$UVMPAGERCTL" "$UVMPAGER_PROBE" "$UVMPAGER_DEMO" "$UVMPAGER_RUN"; do
	name=$(basename "$prog")
	bad=2
	[ "$name" = uvmpager-run ] && bad=125   # a wrapper's own failures, as env(1)
	for f in -h --help; do
		out=$("$prog" $f 2>&1); st=$?
		check "$name $f: exit 0, usage on stdout" [ $st -eq 0 -a -n "$out" ]
		check "$name $f: says its exit status" grep -qi "exit status" <<<"$out"
	done
	for f in -V --version; do
		out=$("$prog" $f 2>/dev/null); st=$?
		v=no; [ $st -eq 0 -a "$(wc -l <<<"$out")" -eq 1 ] && grep -q "^$name [0-9]" <<<"$out" && v=yes
		check "$name $f: exit 0, one line '$name VERSION'" [ $v = yes ]
	done
	err=$("$prog" --no-such-flag 2>&1 >/dev/null); st=$?
	check "$name --no-such-flag: exit $bad" [ $st -eq $bad ]
	check "$name --no-such-flag: Try --help" grep -q "Try '$name --help'" <<<"$err"
done
"$UVMPAGER_PROBE" extra >/dev/null 2>&1
check "uvmpager-probe refuses an argument (2)" [ $? -eq 2 ]

# --- the config file the build installs is the one read ---
check "uvmpagerd --help names $EXPECT_CONFIG" grep -qF "$EXPECT_CONFIG" <("$UVMPAGERD" --help)
check "uvmpagerd reads $EXPECT_CONFIG" grep -qxF "$EXPECT_CONFIG: ok" <("$UVMPAGERD" --check-config)

# --- booleans: every spelling, both ways, and a way to turn one off ---
for v in yes no true false on off 1 0 Yes OFF; do
	printf 'foreground = %s\nswap-preallocate = %s\n' "$v" "$v" >"$work/bool.conf"
	"$UVMPAGERD" -c "$work/bool.conf" --check-config >/dev/null 2>&1
	check "boolean '$v' in the file" [ $? -eq 0 ]
	"$UVMPAGERD" -c /dev/null --foreground="$v" --check-config >/dev/null 2>&1
	check "--foreground=$v" [ $? -eq 0 ]
done
printf 'foreground = yes\n' >"$work/fg.conf"
"$UVMPAGERD" -c "$work/fg.conf" --no-foreground --check-config >/dev/null 2>&1
check "--no-foreground over the file's yes" [ $? -eq 0 ]

# --- --budget 0 is refused; auto is half of RAM ---
err=$("$UVMPAGERD" -c /dev/null --budget 0 --check-config 2>&1); st=$?
check "--budget 0: exit 2" [ $st -eq 2 ]
check "--budget 0: the reason names auto" grep -q "auto" <<<"$err"
"$UVMPAGERD" -c /dev/null --budget auto --check-config >/dev/null
check "--budget auto accepted" [ $? -eq 0 ]
err=$("$UVMPAGERD" -c /dev/null --budget 1000T --check-config 2>&1); st=$?
check "--budget over RAM: exit 2" [ $st -eq 2 ]
check "--budget over RAM: the reason names the machine's memory" grep -q "more than this machine's memory" <<<"$err"

# --- --socket-group nosuch: one error, nothing created ---
err=$("$UVMPAGERD" --foreground --socket-group nosuch-uvmpager --swap-file "$work/g/swap" \
	--socket "$work/g2/sock" --mount "$work/g3/mnt" 2>&1); st=$?
check "--socket-group nosuch: exit 2" [ $st -eq 2 ]
check "--socket-group nosuch: one line of error" [ "$(wc -l <<<"$err")" -eq 1 ]
check "--socket-group nosuch: nothing created" [ ! -e "$work/g" -a ! -e "$work/g2" -a ! -e "$work/g3" ]

# --- --mount on a regular file; a mount point with missing parents ---
touch "$work/file"
err=$("$UVMPAGERD" --foreground --swap-file "$work/f/swap" --socket "$work/f/sock" \
	--mount "$work/file" 2>&1); st=$?
check "--mount FILE: exit 2" [ $st -eq 2 ]
check "--mount FILE: not a directory" grep -q "not a directory" <<<"$err"
check "--mount FILE: nothing created" [ ! -e "$work/f" ]
mkdir -p "$work/deep"
"$UVMPAGERD" --foreground --swap-file "$work/deep/swap" --swap-size 64M \
	--socket "$work/deep/sock" --mount "$work/deep/x/y/mnt" 2>"$work/deep.log" &
pid_deep=$!
for _ in $(seq 500); do [ -e "$work/deep/x/y/mnt/stat" ] && break; sleep 0.02; done
check "--mount with missing parents: mounted" [ -e "$work/deep/x/y/mnt/stat" ]
kill -TERM $pid_deep; wait $pid_deep
check "--mount with missing parents: stops with 0" [ $? -eq 0 ]

# --- a second daemon on the same socket refuses and changes nothing ---
check "daemon a starts" daemon_start a
ino=$(stat -c %i "$work/a/sock")
err=$("$UVMPAGERD" --foreground --swap-file "$work/b/swap" --swap-size 64M \
	--socket "$work/a/sock" --mount "$work/b/mnt" 2>&1); st=$?
check "second daemon: exit 1" [ $st -eq 1 ]
check "second daemon: 'already running, pid $pid_a'" grep -q "already running, pid $pid_a" <<<"$err"
check "second daemon: no swap file, no mount point" [ ! -e "$work/b/swap" -a ! -e "$work/b/mnt" ]
check "second daemon: the first one's socket untouched" [ "$(stat -c %i "$work/a/sock")" = "$ino" ]
check "second daemon: the first one still serves" kill -0 "$pid_a"
out=$("$UVMPAGER_RUN" -d -s "$work/a/sock" /bin/true 2>&1)
check "second daemon: a client still reaches the first" grep -q "client" <<<"$out"
err=$("$UVMPAGERD" --foreground --swap-file "$work/c/swap" --swap-size 64M \
	--socket "$work/c/sock" --mount "$work/a/mnt" 2>&1); st=$?
v=no; [ $st -eq 1 ] && grep -q "in use" <<<"$err" && v=yes
check "a daemon on another's mount point: exit 1, 'in use'" [ $v = yes ]
check "... and the first one's filesystem still answers" grep -q budget_bytes "$work/a/mnt/stat"

# --- a client asking 99G under --budget 64M gets at most the budget ---
"$UVMPAGER_RUN" -s "$work/a/sock" -b 99G sleep 5 &
cpid=$!
for _ in $(seq 250); do [ -e "$work/a/mnt/clients/$cpid/budget" ] && break; sleep 0.02; done
b=$(cat "$work/a/mnt/clients/$cpid/budget" 2>/dev/null || echo none)
v=no; [ "$b" != none ] && [ "$b" -le 67108864 ] && v=yes
check "client budget 99G under --budget 64M: $b <= 67108864" [ $v = yes ]
check "client_budget_max reads 0 (the budget)" [ "$(cat "$work/a/mnt/client_budget_max")" = 0 ]
kill $cpid; wait $cpid 2>/dev/null

# --- uvmpager-run: the command's own status, 127 not found, 126 not runnable ---
"$UVMPAGER_RUN" -s "$work/a/sock" -- sh -c 'exit 3'
check "uvmpager-run passes the command's status (3)" [ $? -eq 3 ]
"$UVMPAGER_RUN" -s "$work/a/sock" -- /nonexistent/cmd 2>/dev/null
check "uvmpager-run: command not found is 127" [ $? -eq 127 ]
"$UVMPAGER_RUN" -s "$work/a/sock" -- "$work/file" 2>/dev/null
check "uvmpager-run: a file that cannot run is 126" [ $? -eq 126 ]
"$UVMPAGER_RUN" -b 12Q -- true 2>/dev/null
check "uvmpager-run: a bad size is 125" [ $? -eq 125 ]
check "uvmpager-run passes the command's own options" \
	[ "$("$UVMPAGER_RUN" -s "$work/a/sock" echo -n -b x)" = "-b x" ]

# --- uvmpager(3)'s example, as compiled in the build, against daemon a ---
out=$(UVMPAGER_SOCKET=$work/a/sock "$UVMPAGER_EXAMPLE" 2>&1); st=$?
echo "    example: $out"
check "the example of uvmpager(3) runs: every page back (exit $st)" [ $st -eq 0 ]

# --- one line per client at debug, not info: 20 runs log nothing ---
lines0=$(wc -l <"$work/a.log")
for _ in $(seq 20); do "$UVMPAGER_RUN" -s "$work/a/sock" /bin/true; done
lines1=$(wc -l <"$work/a.log")
check "20 managed runs at log level info: no log lines ($((lines1 - lines0)))" [ "$lines1" -eq "$lines0" ]
check "daemon a stops with 0" daemon_stop a
check "daemon a's socket is gone, its mount too" [ ! -e "$work/a/sock" -a ! -e "$work/a/mnt/stat" ]
check "daemon b starts at debug" daemon_start b --log-level debug
"$UVMPAGER_RUN" -s "$work/b/sock" /bin/true
sleep 0.2
check "at debug, a client's line is there" grep -q "debug: client" "$work/b.log"
check "daemon b stops with 0" daemon_stop b
finish
