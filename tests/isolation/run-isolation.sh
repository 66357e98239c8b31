#!/bin/bash
# Isolation between users, tested as real unprivileged users (issue 10).
#
# Creates a group and three login-less users (removed on exit): A and B in
# the group, N outside it; starts a uvmpagerd of its own (socket, mount
# point and swap file in a temp dir, 16 MiB budget) whose socket is 0660
# with that group. Then, each step run as the user it names (runuser):
#
#  1. N cannot connect (EACCES); A and B can.
#  2. A runs a program under the shim that holds 64 MiB with a known
#     pattern (4x the budget: most of it lives in swap). A checks it.
#  3. B, through the filesystem: sees A's object directories (by design,
#     as ps sees processes) but cannot read their data, pagemap, range
#     or backing, nor write their budget or A's client budget, nor the
#     daemon's tunables.
#  4. B, through the socket (iso_helper attack): stat, flush, budget of
#     A's objects: ENOENT; release, unmap, remap of A's ranges: no-ops or
#     ENOENT; MAP of A's address range, of B's own unregistered memory, of
#     unmapped memory, of address 0, the top of user space and kernel
#     addresses, over B's own object of another connection, over a
#     read-only shared file (which the daemon would then write as root):
#     each refused; identities not B's (HELLO with another pid, AGENT
#     with guessed tokens, ADOPT with a guessed fork token): refused.
#  5. B sends a userfaultfd its forked child made (iso_helper
#     foreign-uffd), then one A made and handed to B (uffd-give,
#     uffd-take; A's memfd is mapped where B's is, so the kernel would
#     register it): each MAP through it is refused (EBADF), A's pages
#     (half written, half never touched) are intact.
#  6. A checks its 64 MiB again (page-ins through the daemon after all of
#     the above), then once more on exit: every page intact. The daemon
#     is still up, and the read-only file is unchanged.
#
# Environment: UVMPAGERD, UVMPAGER_PRELOAD, ISO_HELPER. Exits 77 when it
# cannot run (not root, no useradd/runuser, no /dev/fuse or userfaultfd).
set -u

skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "creating users and running uvmpagerd need root"
[ -n "${UVMPAGERD:-}" ] && [ -x "$UVMPAGERD" ] || skip "UVMPAGERD unset or not built"
[ -n "${UVMPAGER_PRELOAD:-}" ] && [ -f "$UVMPAGER_PRELOAD" ] || skip "UVMPAGER_PRELOAD unset or not built"
[ -n "${ISO_HELPER:-}" ] && [ -x "$ISO_HELPER" ] || skip "ISO_HELPER unset or not built"
for t in useradd userdel groupadd groupdel runuser; do
	command -v $t >/dev/null || skip "no $t (the test makes real users)"
done
[ -e /dev/fuse ] || skip "no /dev/fuse for the daemon's filesystem"
[ -e /dev/userfaultfd ] || skip "no /dev/userfaultfd"

tag=$(printf '%04x%04x' $$ $RANDOM)
grp=uvi$tag
ua=uvia$tag
ub=uvib$tag
un=uvin$tag
dir=
daemon=
hold=
created=()
passed=0
failed=0

cleanup() {
	[ -n "$hold" ] && kill -9 "$hold" 2>/dev/null
	if [ -n "$daemon" ]; then
		kill "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
	fi
	[ -n "$dir" ] && umount -l "$dir/mnt" 2>/dev/null
	for u in "${created[@]}"; do
		pkill -9 -u "$u" 2>/dev/null
		userdel "$u" 2>/dev/null
	done
	getent group "$grp" >/dev/null && groupdel "$grp"
	[ -n "$dir" ] && rm -rf "$dir"
	rm -f "/dev/shm/$grp.ro"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() {
	echo "FAIL $*"
	failed=$((failed + 1))
	echo "--- uvmpagerd log"
	tail -15 "$dir/daemon.log"
}

# users without a home or a login shell; A and B in the group
groupadd "$grp" || skip "groupadd failed"
for u in "$ua" "$ub" "$un"; do
	g=()
	[ "$u" = "$un" ] || g=(-G "$grp")
	useradd -M -N -g nogroup -s /usr/sbin/nologin "${g[@]}" "$u" 2>/dev/null ||
		useradd -M -s /usr/sbin/nologin "${g[@]}" "$u" || skip "useradd $u failed"
	created+=("$u")
done
echo "users: $ua $ub (group $grp), $un (outside it)"

# as USER CMD...: the user's own uid, gid and groups (initgroups), no root left
as() { local u=$1; shift; runuser -u "$u" -- "$@"; }

dir=$(mktemp -d /var/tmp/uvmpager-iso-XXXXXX) || exit 1
chmod 0755 "$dir"
# the helper and the shim where every user may read them
install -m 0755 "$ISO_HELPER" "$dir/iso_helper"
install -m 0755 "$UVMPAGER_PRELOAD" "$dir/libuvmpager-preload.so"
mkdir "$dir/mnt"
"$UVMPAGERD" --foreground --swap-file "$dir/swap" --swap-size 512M --socket "$dir/sock" \
	--socket-mode 0660 --socket-group "$grp" --mount "$dir/mnt" --budget 16M \
	>"$dir/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do
	[ -S "$dir/sock" ] && [ -r "$dir/mnt/stat" ] && break
	kill -0 "$daemon" 2>/dev/null || break
	sleep 0.1
done
if ! [ -S "$dir/sock" ] || ! kill -0 "$daemon" 2>/dev/null; then
	tail -20 "$dir/daemon.log"
	echo "FAIL uvmpagerd did not start"
	exit 1
fi
echo "socket: $(stat -c '%A %U:%G' "$dir/sock")"

# 1. who may connect
if out=$(as "$un" "$dir/iso_helper" connect "$dir/sock" 2>&1); then
	pass "non-member $un: $out"
else
	fail "non-member $un could connect, or another error: $out"
fi
# 2. A's program under the shim, 64 MiB with a pattern
as "$ua" env LD_PRELOAD="$dir/libuvmpager-preload.so" UVMPAGER_SOCKET="$dir/sock" \
	"$dir/iso_helper" hold 64 >"$dir/hold.log" 2>&1 &
hold=$!
for _ in $(seq 100); do
	grep -q '^ready' "$dir/hold.log" 2>/dev/null && break
	sleep 0.1
done
read -r _ a_addr a_len < <(grep '^ready' "$dir/hold.log")
a_pid=$(pgrep -u "$ua" -f "iso_helper hold")
[ -n "${a_addr:-}" ] && [ -n "$a_pid" ] || { cat "$dir/hold.log"; fail "A's program did not start"; exit 1; }
# A's objects, as root sees them
targets=()
a_objs=0
for o in "$dir"/mnt/objects/*/; do
	[ "$(cat "$o/uid" 2>/dev/null)" = "$(id -u "$ua")" ] || continue
	id=$(basename "$o")
	addr=$(awk '$1 == "address" { print $2 }' "$o/range")
	len=$(awk '$1 == "length" { print $2 }' "$o/range")
	targets+=("$id:${addr#0x}:$len")
	a_objs=$((a_objs + 1))
done
swapped=$(awk '$1 == "swapped_bytes" { print $2 }' "$dir/mnt/stat")
if [ "$a_objs" -gt 0 ]; then
	pass "A (pid $a_pid) holds 64 MiB at $a_addr under the shim: $a_objs object(s), $((swapped >> 20)) MiB in swap"
else
	fail "A's program has no object: $(cat "$dir/hold.log")"
	exit 1
fi
a_check() {   # $1: what; A checks every page, as A
	local before after
	before=$(grep -c '^check' "$dir/hold.log")
	kill -USR1 "$a_pid"
	for _ in $(seq 300); do
		after=$(grep -c '^check' "$dir/hold.log")
		[ "$after" -gt "$before" ] && break
		sleep 0.1
	done
	line=$(grep '^check' "$dir/hold.log" | tail -1)
	if [ "$after" -gt "$before" ] && [ "$(echo "$line" | awk '{ print $3 }')" = 0 ]; then
		pass "A's data $1: $(echo "$line" | awk '{ print $2 }') pages checked, 0 bad"
	else
		fail "A's data $1: ${line:-no answer}"
	fi
}
a_check "before B"

# 3. B through the filesystem
fs_refused=0
for o in "$dir"/mnt/objects/*/; do
	[ "$(cat "$o/uid" 2>/dev/null)" = "$(id -u "$ua")" ] || continue
	for f in data pagemap range; do
		if as "$ub" cat "$o/$f" >/dev/null 2>"$dir/err" || ! grep -q 'Permission denied' "$dir/err"; then
			fail "B read A's $o$f: $(cat "$dir/err")"
		else
			fs_refused=$((fs_refused + 1))
		fi
	done
	for f in budget data; do
		if as "$ub" sh -c "echo 4096 > '$o/$f'" 2>"$dir/err" || ! grep -q 'Permission denied' "$dir/err"; then
			fail "B wrote A's $o$f: $(cat "$dir/err")"
		else
			fs_refused=$((fs_refused + 1))
		fi
	done
done
for f in "clients/$a_pid/budget" budget client_budget_max watermark_high; do
	if as "$ub" sh -c "echo 4096 > '$dir/mnt/$f'" 2>"$dir/err" || ! grep -q 'Permission denied' "$dir/err"; then
		fail "B wrote $f: $(cat "$dir/err")"
	else
		fs_refused=$((fs_refused + 1))
	fi
done
listed=$(as "$ub" ls "$dir/mnt/objects" | wc -l)
pass "B through the filesystem: $fs_refused reads/writes refused (EACCES); B lists $listed object directories (existence and sizes are public, as in ps)"

# 4. B through the socket
echo "# B's requests against A's $a_objs object(s): ${targets[*]}"
head -c 65536 /dev/urandom >"/dev/shm/$grp.ro"
chmod 0644 "/dev/shm/$grp.ro"
ro_sum=$(sha256sum <"/dev/shm/$grp.ro")
if as "$ub" "$dir/iso_helper" attack "$dir/sock" "/dev/shm/$grp.ro" "${targets[@]}" >"$dir/attack.log" 2>&1; then
	sort "$dir/attack.log" | uniq -c | grep -v 'attack:'
	pass "B through the socket: $(tail -1 "$dir/attack.log")"
else
	cat "$dir/attack.log"
	fail "B through the socket (rc $?)"
fi
if [ "$(sha256sum <"/dev/shm/$grp.ro")" = "$ro_sum" ]; then
	pass "the read-only shared file is unchanged"
else
	fail "the read-only shared file changed"
fi

# 5. a userfaultfd of another process (B's child)
if as "$ub" "$dir/iso_helper" foreign-uffd "$dir/sock" >"$dir/foreign.log" 2>&1 &&
	grep -q "the userfaultfd it sent is not its own" "$dir/daemon.log"; then
	pass "$(tail -1 "$dir/foreign.log") (daemon: $(grep -o 'MAP refused: the userfaultfd.*' "$dir/daemon.log" | head -1))"
else
	cat "$dir/foreign.log"
	fail "foreign userfaultfd"
fi

# 5b. a userfaultfd of another user: A hands B its own, B sends it on
mkdir -m 1777 "$dir/x"
as "$ua" timeout 30 "$dir/iso_helper" uffd-give "$dir/sock" "$dir/x/give.sock" >"$dir/give.log" 2>&1 &
give=$!
as "$ub" "$dir/iso_helper" uffd-take "$dir/sock" "$dir/x/give.sock" >"$dir/take.log" 2>&1
rc_take=$?
wait $give
rc_give=$?
if [ $rc_take = 0 ] && [ $rc_give = 0 ]; then
	pass "$(tail -1 "$dir/take.log"); $(tail -1 "$dir/give.log")"
else
	cat "$dir/give.log" "$dir/take.log"
	fail "a userfaultfd of another user (B rc $rc_take, A rc $rc_give)"
fi

# 6. A after all that
a_check "after B"
kill -0 "$daemon" 2>/dev/null && pass "uvmpagerd still up" || fail "uvmpagerd died"
kill -TERM "$a_pid"
wait "$hold"
rc=$?
hold=
if [ $rc = 0 ]; then
	pass "A's program exits 0: $(grep '^check' "$dir/hold.log" | wc -l) checks of every page, none bad"
else
	cat "$dir/hold.log"
	fail "A's program exited $rc"
fi
refusals=$(grep -c 'refused:' "$dir/attack.log" "$dir/foreign.log" "$dir/take.log" | awk -F: '{ s += $2 } END { print s }')
echo "refusals counted: $fs_refused in the filesystem, $refusals through the socket"
echo "isolation: $passed passed, $failed failed"
[ $failed = 0 ]
