#!/usr/bin/env bash
# uvmpagerd under a real systemd: the build installed into an overlay of
# the host's tree, systemd booted as PID 1 in it (systemd-nspawn --boot,
# its own network and machine id, /dev/fuse and /dev/userfaultfd bound in),
# then as an operator would: systemctl start, is-active, the STATUS= line,
# the socket's group from sysusers.d, the FUSE mount seen by PID 1, a
# program under uvmpager-run paging, systemctl reload, systemctl stop
# handing every page back (the program checks each one afterwards).
# Needs root, systemd-nspawn, overlayfs, /dev/fuse, /dev/userfaultfd.
set -u
. "$(dirname "$0")/../operator/lib.sh"
# the best score without a private mount namespace (the unit's comments say why)
MAX_EXPOSURE=4.4
here=$(cd "$(dirname "$0")" && pwd)
. "$here/container.sh"
[ -n "${BUILD_ROOT:-}" ] && [ -n "${SYSCONFDIR:-}" ] || skip "BUILD_ROOT and SYSCONFDIR (the build to install) not set"
container_prepare
meson install -C "$BUILD_ROOT" --destdir "$root" --no-rebuild --quiet >/dev/null ||
	{ fail "meson install into the container's tree"; finish; exit 1; }
cp "$here/pattern.py" "$root/$t/pattern.py"
# a small budget and swap file, and a quick status line to look at
conf_in=$SYSCONFDIR/uvmpager/uvmpager.conf
conf=$root$conf_in
[ -f "$conf" ] || { fail "installed $conf_in not found"; finish; exit 1; }
printf 'budget = 16M\nswap-size = 256M\nstatus-interval = 1\n' >"$conf"

container_boot || { finish; exit 1; }

# the installed unit, where systemd reads it: no complaint (man pages included)
out=$(cin systemd-analyze verify /lib/systemd/system/uvmpagerd.service 2>&1)
check "systemd-analyze verify: clean${out:+ ($out)}" [ -z "$out" ]
score=$(cin systemd-analyze security --offline=yes /lib/systemd/system/uvmpagerd.service 2>&1 |
	sed -n 's/.*Overall exposure level for uvmpagerd.service: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security: $score"
check "systemd-analyze security at most $MAX_EXPOSURE (is ${score:-none})" \
	awk -v s="${score:-99}" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'

# a short watchdog period, to see the daemon ping it
mkdir -p "$root/etc/systemd/system/uvmpagerd.service.d"
printf '[Service]\nWatchdogSec=2\n' >"$root/etc/systemd/system/uvmpagerd.service.d/watchdog.conf"
cin systemctl daemon-reload
check "systemctl start uvmpagerd" cin systemctl start uvmpagerd
check "systemctl is-active uvmpagerd" [ "$(cin systemctl is-active uvmpagerd)" = active ]
main=$(cin systemctl show -p MainPID --value uvmpagerd)
echo "capabilities of PID 1: $(cin grep CapBnd /proc/1/status), of the daemon: $(cin grep CapEff /proc/$main/status)"
check "the daemon shares PID 1's mount namespace" \
	[ "$(cin readlink /proc/1/ns/mnt)" = "$(cin readlink /proc/$main/ns/mnt)" ]
check "PID 1 sees the FUSE mount" cin findmnt -n -t fuse.uvmpager /run/uvmpager
check "the socket group from sysusers.d" [ "$(cin stat -c %G:%a /run/uvmpagerd/control.sock)" = uvmpager:660 ]
check "/var/lib/uvmpager 0700 (tmpfiles.d)" [ "$(cin stat -c %a /var/lib/uvmpager)" = 700 ]

# a program under the shim, 48 MiB under a 16 MiB budget
mkdir -p "$root/$t/p"
cin uvmpager-run --budget 32M -- /usr/bin/python3 "$t/pattern.py" 48 "$t/p" >"$t/rw/pattern.out" 2>&1 &
prog=$!
for _ in $(seq 300); do [ -e "$root/$t/p/ready" ] && break; sleep 0.1; done
check "the managed program filled its memory" [ -e "$root/$t/p/ready" ]
swapped=$(cin awk '$1 == "swapped_bytes" {print $2}' /run/uvmpager/stat)
check "its pages went to swap ($swapped bytes)" [ "${swapped:-0}" -gt 0 ]
sleep 1.2   # a status line with the client in it
status=$(cin systemctl status --no-pager uvmpagerd)
echo "$status" | sed 's/^/    /'
check "systemctl status shows the STATUS= line" grep -q "Status: \"1 clients; .* MiB swapped" <<<"$status"

w0=$(cin systemctl show -p WatchdogTimestampMonotonic --value uvmpagerd)
sleep 1.5
w1=$(cin systemctl show -p WatchdogTimestampMonotonic --value uvmpagerd)
check "the daemon pings the watchdog (WatchdogSec=2: $w0 -> $w1)" [ "${w1:-0}" -gt "${w0:-0}" ]
check "... and was never restarted" [ "$(cin systemctl show -p NRestarts --value uvmpagerd)" = 0 ]

# reload: a new budget, the unit stays active
sed -i 's/^budget = 16M/budget = 24M/' "$root$conf_in"
check "systemctl reload uvmpagerd" cin systemctl reload uvmpagerd
check "the reloaded budget is in force" \
	[ "$(cin awk '$1 == "budget_bytes" {print $2}' /run/uvmpager/stat)" = $((24 << 20)) ]
check "still active after reload" [ "$(cin systemctl is-active uvmpagerd)" = active ]

# stop: every page back to the program, which then checks them all
check "systemctl stop uvmpagerd" cin systemctl stop uvmpagerd
check "the daemon exited 0" [ "$(cin systemctl show -p ExecMainStatus --value uvmpagerd)" = 0 ]
check "the mount is gone" [ -z "$(cin findmnt -n -t fuse.uvmpager /run/uvmpager)" ]
touch "$root/$t/p/go"
wait $prog
st=$?
cat "$t/rw/pattern.out"
check "the program read every page back after the stop (exit $st)" [ $st -eq 0 ]
cin journalctl -u uvmpagerd --no-pager -o cat | sed 's/^/    journal: /'
check "the journal says it let the client go" \
	grep -q "letting 1 clients go" <(cin journalctl -u uvmpagerd --no-pager -o cat)
finish
