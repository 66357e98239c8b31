# A container booting real systemd as PID 1 over the host's tree, for the
# tests of the service: an overlay of / (read-only below, a tmpfs for the
# container's changes), its own machine id and network, /dev/fuse and
# /dev/userfaultfd bound in. Sourced after operator/lib.sh.
#
#   container_prepare      $root is the tree to fill (exits 77 if impossible)
#   container_boot         systemd-nspawn --boot; returns once it is up
#   cin CMD...             run CMD in the container (its namespaces, clean env)
# The EXIT trap powers it off and removes everything.

skip() { echo "SKIP: $*"; exit 77; }

container_prepare() {
	[ "$(id -u)" -eq 0 ] || skip "needs root"
	command -v systemd-nspawn >/dev/null || skip "no systemd-nspawn (package systemd-container)"
	for dev in /dev/fuse /dev/userfaultfd; do [ -c $dev ] || skip "no $dev"; done
	t=$(mktemp -d /var/tmp/uvmpager-nspawn-XXXXXX)
	root=$t/root
	nspawn_pid= leader=
	trap container_cleanup EXIT
	mkdir -p "$t/rw" "$root"
	mount -t tmpfs -o size=1G tmpfs "$t/rw" || skip "cannot mount a tmpfs"
	mkdir -p "$t/rw/upper" "$t/rw/work"
	mount -t overlay overlay -o "lowerdir=/,upperdir=$t/rw/upper,workdir=$t/rw/work" "$root" ||
		skip "no overlayfs over /"
	systemd-id128 new >"$root/etc/machine-id"
	mkdir -p "$root/$t"
}

container_cleanup() {
	if [ -n "$leader" ] && kill -0 "$leader" 2>/dev/null; then
		kill -RTMIN+4 "$leader"     # systemd: poweroff
		for _ in $(seq 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
	fi
	[ -n "$nspawn_pid" ] && kill -9 "$nspawn_pid" 2>/dev/null
	[ -n "$nspawn_pid" ] && wait "$nspawn_pid" 2>/dev/null
	umount "$root" 2>/dev/null
	umount "$t/rw" 2>/dev/null
	rm -rf "$t"
}

# a clean environment: the container's own PATH, nothing of the build tree
cin() {
	nsenter -t "$leader" -m -u -i -n -p -- \
		env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

container_boot() {
	local state=
	SECONDS=0
	# basic.target: the system without the host's services (sysusers and
	# tmpfiles run); CAP_IPC_LOCK for the daemon's mlockall
	systemd-nspawn -D "$root" --boot --register=no --keep-unit --console=pipe \
		--private-network --capability=CAP_IPC_LOCK,CAP_SYS_RESOURCE \
		--bind=/dev/fuse --bind=/dev/userfaultfd -M uvmpager-test \
		systemd.unit=basic.target >"$t/rw/console.log" 2>&1 &
	nspawn_pid=$!
	# its PID 1, once it is systemd: nspawn's first child only sets up and goes
	for _ in $(seq 300); do
		for c in $(pgrep -P "$nspawn_pid"); do
			[ "$(cat /proc/$c/comm 2>/dev/null)" = systemd ] && leader=$c
		done
		[ -n "$leader" ] && break
		sleep 0.05
	done
	if [ -z "$leader" ]; then
		fail "the container did not start"
		sed 's/^/    console: /' "$t/rw/console.log"
		return 1
	fi
	# until its bus is up and the boot is done (degraded: a host unit failed here)
	for _ in $(seq 600); do
		state=$(cin systemctl is-system-running 2>&1)
		case $state in running|degraded) break ;; esac
		kill -0 "$leader" 2>/dev/null || break
		sleep 0.1
	done
	case $state in
	running|degraded) ;;
	*)
		fail "the container did not boot ($state)"
		sed 's/^/    console: /' "$t/rw/console.log"
		return 1 ;;
	esac
	echo "booted in about $SECONDS s: $state"
	check "systemd is PID 1 in the container" [ "$(cin cat /proc/1/comm)" = systemd ]
}
