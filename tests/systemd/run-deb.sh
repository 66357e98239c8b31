#!/usr/bin/env bash
# The .debs: dpkg-buildpackage of a clean copy of the tree (git archive
# of HEAD, or the working tree's files when it is not a git checkout),
# then `apt install ./*.deb` in a container booting real systemd over the
# host's tree (container.sh): the package's own scripts make the socket
# group and state directory and start the service; it runs a program
# managed, the library's example builds with pkg-config, and the package
# is removed cleanly. Needs root, dpkg-dev and debhelper (else 77).
set -u
. "$(dirname "$0")/../operator/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/container.sh"
src=$(cd "$here/../.." && pwd)
command -v dpkg-buildpackage >/dev/null || skip "no dpkg-buildpackage (dpkg-dev)"
command -v dh >/dev/null || skip "no debhelper"
container_prepare

mkdir -p "$t/rw/deb/src"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	# what is committed, plus what is changed in the work tree
	git -C "$src" ls-files -z --cached --others --exclude-standard |
		(cd "$src" && xargs -0 tar -c --ignore-failed-read 2>/dev/null) | tar -x -C "$t/rw/deb/src"
else
	(cd "$src" && tar -c --exclude='./build*' --exclude=./obj-\* .) | tar -x -C "$t/rw/deb/src"
fi
SECONDS=0
(cd "$t/rw/deb/src" && nice dpkg-buildpackage -us -uc -b >"$t/rw/deb/build.log" 2>&1)
st=$?
echo "dpkg-buildpackage: $SECONDS s"
[ $st -eq 0 ] || tail -30 "$t/rw/deb/build.log"
check "dpkg-buildpackage -b builds (exit $st)" [ $st -eq 0 ]
debs=$(cd "$t/rw/deb" && ls uvmpager_*.deb libuvmpager0_*.deb libuvmpager-dev_*.deb 2>/dev/null)
check "three packages: $(echo $debs)" [ "$(wc -w <<<"$debs")" -eq 3 ]
mkdir -p "$root/$t/debs"
for f in $debs; do cp "$t/rw/deb/$f" "$root/$t/debs/"; done

# an image's policy-rc.d (Docker's forbids starting services) is not a fresh machine's
rm -f "$root/usr/sbin/policy-rc.d"
container_boot || { finish; exit 1; }
out=$(cin sh -c "apt-get install -y $t/debs/uvmpager_*.deb $t/debs/libuvmpager0_*.deb $t/debs/libuvmpager-dev_*.deb" 2>&1)
st=$?
[ $st -eq 0 ] || sed 's/^/    apt: /' <<<"$out" | tail -20
check "apt install ./*.deb (exit $st)" [ $st -eq 0 ]
check "the package's scripts enabled the service" [ "$(cin systemctl is-enabled uvmpagerd)" = enabled ]
for _ in $(seq 50); do [ "$(cin systemctl is-active uvmpagerd)" = active ] && break; sleep 0.1; done
check "... and started it" [ "$(cin systemctl is-active uvmpagerd)" = active ]
cin systemctl status --no-pager uvmpagerd | sed 's/^/    /'
check "the group uvmpager exists" cin getent group uvmpager
check "the socket is the group's" [ "$(cin stat -c %G:%a /run/uvmpagerd/control.sock)" = uvmpager:660 ]
check "the config is a conffile at /etc/uvmpager/uvmpager.conf" \
	grep -qx "/etc/uvmpager/uvmpager.conf" <(cin dpkg-query -W -f='${Conffiles}\n' uvmpager | awk '{print $1}')
check "the daemon reads /etc/uvmpager/uvmpager.conf" grep -qx "/etc/uvmpager/uvmpager.conf: ok" <(cin uvmpagerd --check-config)
out=$(cin uvmpager-run --debug -- /bin/true 2>&1)
check "uvmpager-run runs a program managed" grep -q "client" <<<"$out"
check "man uvmpagerd" cin sh -c "MANWIDTH=80 man uvmpagerd | grep -q 'uvmpagerd \\-\\|uvmpagerd -'"
cp "$src/man/examples/uvmpager-example.c" "$root/$t/example.c"
check "the example of uvmpager(3) builds with pkg-config libuvmpager" \
	cin sh -c "cc -o $t/example $t/example.c \$(pkg-config --cflags --libs libuvmpager)"
out=$(cin "$t/example" 2>&1); st=$?
echo "    example: $out"
check "... and runs managed by the service (exit $st)" [ $st -eq 0 ]
check "apt remove stops the service" cin apt-get remove -y uvmpager
check "... it is gone" [ "$(cin systemctl is-active uvmpagerd)" != active ]
check "... and so is its mount" [ -z "$(cin findmnt -n -t fuse.uvmpager /run/uvmpager)" ]
finish
