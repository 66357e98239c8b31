# Shared by the operator tests: checks that count, a daemon of the test's own.
fails=0
ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }
# check DESCRIPTION COMMAND...: the command must succeed
check() { local d=$1; shift; if "$@"; then ok "$d"; else fail "$d"; fi; }
finish() { echo "$fails failed"; [ "$fails" -eq 0 ]; }

require_root() {
	if [ "$(id -u)" -ne 0 ]; then echo "SKIP: needs root"; exit 77; fi
	if [ ! -e /dev/fuse ]; then echo "SKIP: no /dev/fuse"; exit 77; fi
}

# daemon_start NAME ARGS...: a foreground daemon on files under $work/NAME,
# its stderr in $work/NAME.log; waits for its mount's stat file
daemon_start() {
	local name=$1 d=$work/$1
	shift
	mkdir -p "$d"
	"$UVMPAGERD" --foreground --swap-file "$d/swap" --swap-size 256M --socket "$d/sock" \
		--socket-mode 0666 --mount "$d/mnt" --budget 64M "$@" 2>"$work/$name.log" &
	eval "pid_$name=$!"
	for _ in $(seq 500); do
		[ -e "$d/mnt/stat" ] && [ -S "$d/sock" ] && return 0
		kill -0 "$(eval echo \$pid_$name)" 2>/dev/null || return 1
		sleep 0.02
	done
	return 1
}

daemon_stop() {
	local p
	p=$(eval echo "\${pid_$1:-}")
	[ -n "$p" ] || return 0
	kill -TERM "$p" 2>/dev/null
	wait "$p"
	local st=$?
	eval "pid_$1="
	return $st
}
