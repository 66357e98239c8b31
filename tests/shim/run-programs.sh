#!/bin/bash
# Real, unmodified programs under the LD_PRELOAD shim (sort: one big
# malloc; python: its arenas and realloc growth; perl: a huge array and
# hash; dd: a big aligned buffer filled and drained by the kernel; awk: a
# huge associative array; mmap_prog and fork_prog: tests/shim/*.c) against a uvmpagerd
# of our own: each runs once plain and once managed with a 32 MiB budget
# (perl and awk: more, see run);
# stdout, stderr and exit status must match byte for byte, and the
# daemon's stat file must show that pages went to swap and came back.
#
# Environment: UVMPAGERD (the daemon), UVMPAGER_PRELOAD (the shim),
# MMAP_PROG and FORK_PROG (tests/shim/*.c, built; compiled here with cc
# when unset), UVMPAGERD_ARGS (more daemon flags, e.g. --tracking wp-sync).
# Exits 77 when it cannot run (not root, nothing built).
set -u

skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "uvmpagerd needs root"
[ -n "${UVMPAGERD:-}" ] && [ -x "$UVMPAGERD" ] || skip "uvmpagerd is not built (UVMPAGERD=${UVMPAGERD:-unset})"
[ -n "${UVMPAGER_PRELOAD:-}" ] && [ -f "$UVMPAGER_PRELOAD" ] ||
	skip "libuvmpager-preload.so is not built (UVMPAGER_PRELOAD=${UVMPAGER_PRELOAD:-unset})"
[ -e /dev/fuse ] || skip "no /dev/fuse for the daemon's stat file"

here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /var/tmp/uvmpager-shim-XXXXXX) || exit 1
daemon=

cleanup() {
	if [ -n "$daemon" ]; then
		kill "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
	fi
	umount -l "$dir/mnt" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

build() {   # name: the program's path, compiled here if the build did not give it
	local var=$1 src=$2 bin
	bin=${!var:-}
	if [ -z "$bin" ]; then
		command -v cc >/dev/null || skip "$var unset and no cc to build $src"
		bin=$dir/$(basename "$src" .c)
		cc -O2 -pthread -o "$bin" "$here/$src" || exit 1
	fi
	echo "$bin"
}
mmap_prog=$(build MMAP_PROG mmap_prog.c) || exit 1
fork_prog=$(build FORK_PROG fork_prog.c) || exit 1
# the interpreter itself, not a version manager's wrapper script
python=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) || skip "no python3"

mkdir -p "$dir/mnt"
# shellcheck disable=SC2086
"$UVMPAGERD" --foreground --swap-file "$dir/swap" --swap-size 4G --socket "$dir/sock" \
	--mount "$dir/mnt" --budget 1G ${UVMPAGERD_ARGS:-} >"$dir/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do
	[ -S "$dir/sock" ] && [ -r "$dir/mnt/stat" ] && break
	kill -0 "$daemon" 2>/dev/null || { cat "$dir/daemon.log"; echo "FAIL: uvmpagerd did not start"; exit 1; }
	sleep 0.1
done
[ -S "$dir/sock" ] && [ -r "$dir/mnt/stat" ] || { cat "$dir/daemon.log"; echo "FAIL: uvmpagerd did not start"; exit 1; }

stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$dir/mnt/stat"; }

# ~64 MB of nearly sorted lines (sort's peak: 154 MiB, nearly five times
# the budget): sort's passes stay local enough to page. 150 MB checked
# nothing more and took five times as long.
seq 1 1500000 | awk '{ printf "%010d %x %s\n", $1 + ($1 % 97 == 0 ? 5000 : 0), $1 * 40503 % 65536,
	"abcdefghijklmnopqrstuvwxyz" }' >"$dir/lines.txt"

# a growing buffer, lists and a dict: a peak of 157 MiB, five times the
# budget (twice as much checked nothing more and took twice as long)
cat >"$dir/prog.py" <<'PY'
import hashlib
b = bytearray()
for i in range(400000):
    b += b'%08d' % i * 16
l = [i * i for i in range(1500000)]
l.extend(l[::-3])
t = sum(l) % 1000000007
chunks = [bytes(b[i:i + 4096]) for i in range(0, len(b), 4096 * 8)]
d = {i: i * 3 for i in range(0, 500000, 3)}
print(len(b), hashlib.sha256(b).hexdigest())
print(len(l), t, len(d), sum(d.values()), len(chunks), sum(map(len, chunks)))
PY

awk_prog='BEGIN { for (i = 0; i < 3000000; i++) a[i] = i * 2; n = 0; s = 0
	for (k in a) { s += a[k]; n++ }
	for (i = 0; i < 3000000; i += 3) delete a[i]
	printf "%d %d %d\n", s, n, length(a) }'

perl_prog='my @a; push @a, $_ * 2 for 1 .. 4_000_000;
	my %h; $h{$_} = $a[$_] for grep { $_ % 5 == 0 } 0 .. $#a;
	my $s = 0; $s += $_ for @a; $s += $_ for values %h;
	print "$s ", scalar(@a), " ", scalar(keys %h), "\n";'

# V8: its heap is reserved and committed in pieces (issue 15), an
# ArrayBuffer is a big block of its own
cat >"$dir/prog.js" <<'JS'
const n = 12e6, a = new Float64Array(n);
for (let i = 0; i < n; i++) a[i] = (i * 2654435761) % 1000003;
let s = 0;
for (let i = 0; i < n; i += 7) s += a[i];
const objs = [];
for (let i = 0; i < 600000; i++) objs.push({ k: i, v: 'x' + i });
let t = 0;
for (const o of objs) t += o.k + o.v.length;
console.log(s, t);
JS

passed=0
failed=0

# run [--any-paging] NAME CMD...: plain, then under the shim; same output,
# and pages went out and came back (--any-paging: whatever the program's
# big blocks needed; without the heap most of awk's memory is small
# blocks glibc keeps). BUDGET: the program's budget (32M). With the heap
# (issue 15: every block managed) perl's 439 MiB of scalars and hash and
# awk's 262 MiB array are paged at random: at 32M (and at 160M for awk)
# they thrash for many minutes on 2 cores, so they get a budget near
# their peak (perl still pages; awk may not).
run() {
	local check=both name outs ins rc_plain rc_shim why= budget=${BUDGET:-32M}
	if [ "$1" = --any-paging ]; then
		check=any
		shift
	fi
	name=$1
	shift
	local t0=$EPOCHREALTIME t1 t2
	"$@" >"$dir/$name.out.plain" 2>"$dir/$name.err.plain" </dev/null
	rc_plain=$?
	t1=$EPOCHREALTIME
	outs=$(stat_of swapouts)
	ins=$(stat_of swapins)
	env LD_PRELOAD="$UVMPAGER_PRELOAD" UVMPAGER_SOCKET="$dir/sock" UVMPAGER_BUDGET="$budget" \
		"$@" >"$dir/$name.out.shim" 2>"$dir/$name.err.shim" </dev/null
	rc_shim=$?
	t2=$EPOCHREALTIME
	outs=$(( $(stat_of swapouts) - outs ))
	ins=$(( $(stat_of swapins) - ins ))
	# the shim's one line for memory outside the budget (glibc's heap of
	# small blocks, here) is no difference in the program's behaviour
	grep -v '^uvmpager\[[0-9]*\]: .* is not managed: ' "$dir/$name.err.shim" >"$dir/$name.err.cmp"
	if [ "$rc_plain" != "$rc_shim" ]; then
		why="exit status $rc_shim, plain $rc_plain"
	elif ! cmp -s "$dir/$name.out.plain" "$dir/$name.out.shim"; then
		why="stdout differs: $(cmp "$dir/$name.out.plain" "$dir/$name.out.shim" 2>&1 | head -1)"
	elif ! cmp -s "$dir/$name.err.plain" "$dir/$name.err.cmp"; then
		why="stderr differs: $(head -c 300 "$dir/$name.err.shim")"
	elif [ "$check" = both ] && { [ "$outs" -le 0 ] || [ "$ins" -le 0 ]; }; then
		why="no paging (swapouts +$outs, swapins +$ins)"
	elif ! kill -0 "$daemon" 2>/dev/null; then
		why="uvmpagerd died"
	fi
	if [ -z "$why" ]; then
		echo "PASS $name (exit $rc_plain; swapouts +$outs, swapins +$ins;" \
			"plain $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s," \
			"managed ($budget budget) $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", b - a }') s)"
		passed=$((passed + 1))
	else
		echo "FAIL $name: $why"
		failed=$((failed + 1))
	fi
}

export LC_ALL=C
run sort sort -S 200M "$dir/lines.txt"
run python "$python" "$dir/prog.py"
run mmap_prog "$mmap_prog"
BUDGET=384M run perl perl -e "$perl_prog"
run dd sh -c "dd if='$dir/lines.txt' bs=64M status=none | md5sum"
BUDGET=320M run --any-paging awk awk "$awk_prog"
run fork_prog "$fork_prog"
if command -v node >/dev/null; then
	BUDGET=64M run node node "$dir/prog.js"
else
	echo "SKIP node: not installed"
fi

if [ "$failed" -gt 0 ]; then
	echo "--- uvmpagerd log"
	tail -20 "$dir/daemon.log"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
