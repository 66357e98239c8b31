#!/usr/bin/env bash
# meson install --destdir lays out every part (programs, shim, library with
# its pkg-config file and header, unit, sysusers.d, tmpfiles.d, example
# config, every man page and a link page per library function); every page
# renders without a warning and has the sections it should; the installed
# unit verifies and scores; uvmpager(3)'s example builds against the
# installed library with pkg-config.
set -u
. "$(dirname "$0")/../operator/lib.sh"
[ -n "${BUILD_ROOT:-}" ] || { echo "SKIP: BUILD_ROOT not set"; exit 77; }
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
meson install -C "$BUILD_ROOT" --destdir "$d" --no-rebuild --quiet >/dev/null
check "meson install --destdir" [ $? -eq 0 ]
intro() { meson introspect "$BUILD_ROOT" --buildoptions | python3 -c "
import json, sys
print({o['name']: o['value'] for o in json.load(sys.stdin)}['$1'])"; }
prefix=$(intro prefix); libdir=$prefix/$(intro libdir); mandir=$prefix/$(intro mandir)
sysconfdir=$(intro sysconfdir); [ "${sysconfdir#/}" = "$sysconfdir" ] && sysconfdir=$prefix/$sysconfdir

for f in "$prefix/sbin/uvmpagerd" "$prefix/sbin/uvmpager-probe" "$prefix/bin/uvmpagerctl" \
	"$prefix/bin/uvmpager-run" "$libdir/libuvmpager-preload.so" "$libdir/libuvmpager.so.0" \
	"$libdir/libuvmpager.so" "$libdir/pkgconfig/libuvmpager.pc" \
	"$prefix/include/uvmpager/uvmpager.h" "$prefix/include/uvmpager/protocol.h" \
	"$sysconfdir/uvmpager/uvmpager.conf" "$UNITDIR/uvmpagerd.service" \
	"$SYSUSERSDIR/uvmpager.conf" "$TMPFILESDIR/uvmpager.conf"; do
	check "installed: $f" [ -e "$d$f" ]
done
check "the installed daemon reads the installed config" \
	grep -qF "$sysconfdir/uvmpager/uvmpager.conf" <("$d$prefix/sbin/uvmpagerd" --help)
check "uvmpager-run loads the installed shim" \
	grep -qF "$libdir/libuvmpager-preload.so" <("$d$prefix/bin/uvmpager-run" --help)

# every man page: there, clean, with its sections
pages="uvmpagerd.8 uvmpager.conf.5 uvmpager.7 uvmpager-run.1 uvmpager-probe.8 uvmpager.3
libuvmpager-preload.7 uvmpagerctl.1 uvmpagerfs.5"
for p in $pages; do
	f=$d$mandir/man${p##*.}/$p
	check "man page $p installed" [ -f "$f" ]
	w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null)
	check "man --warnings $p: clean${w:+ ($w)}" [ -z "$w" ]
	for s in NAME DESCRIPTION "SEE ALSO"; do
		check "$p has $s" grep -q "^\.SH \"\?$s" "$f"
	done
	v=yes; grep -q '@[A-Z]*@' "$f" && v=no
	check "$p names no build-time placeholder" [ $v = yes ]
done
for p in uvmpagerd.8 uvmpager-run.1 uvmpager-probe.8; do
	f=$d$mandir/man${p##*.}/$p
	for s in SYNOPSIS OPTIONS "EXIT STATUS" EXAMPLES; do
		check "$p has $s" grep -q "^\.SH \"\?$s" "$f"
	done
done
funcs=$(sed -n 's/^\(int\|void\|bool\) \(uvmpager_[a-z_]*\)(.*/\2/p' "$HEADER")
check "the header declares functions" [ -n "$funcs" ]
for fn in $funcs; do
	out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -M "$d$mandir" 3 "$fn" 2>&1)
	v=no; [ -n "$out" ] && grep -q "uvmpager_connect" <<<"$out" && ! grep -qi "warning" <<<"$out" && v=yes
	check "man 3 $fn: the link page leads to uvmpager(3)" [ $v = yes ]
	check "uvmpager(3) NAME lists $fn" grep -q "$fn" <(sed -n '/^\.SH NAME/,/^\.SH SYNOPSIS/p' "$d$mandir/man3/uvmpager.3")
done

# the unit as installed, its command pointed into the destdir
sed "s|^ExecStart=$prefix/sbin/uvmpagerd|ExecStart=$d$prefix/sbin/uvmpagerd|" \
	"$d$UNITDIR/uvmpagerd.service" >"$d/uvmpagerd.service"
out=$(systemd-analyze verify --man=no "$d/uvmpagerd.service" 2>&1)
check "systemd-analyze verify: clean${out:+ ($out)}" [ -z "$out" ]
score=$(systemd-analyze security --offline=yes "$d/uvmpagerd.service" 2>&1 |
	sed -n 's/.*Overall exposure level for uvmpagerd.service: \([0-9.]*\).*/\1/p')
check "systemd-analyze security --offline: ${score:-none} <= 4.4" \
	awk -v s="${score:-99}" 'BEGIN { exit !(s <= 4.4) }'
check "the unit has ManagedOOMPreference=omit and OOMScoreAdjust=-1000" \
	grep -q "^ManagedOOMPreference=omit" "$d/uvmpagerd.service"
grep -q "^OOMScoreAdjust=-1000" "$d/uvmpagerd.service"
check "... OOMScoreAdjust=-1000" [ $? -eq 0 ]

# uvmpager(3)'s example against the installed library, as a user would
flags=$(PKG_CONFIG_PATH="$d$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$d" \
	pkg-config --cflags --libs libuvmpager)
check "pkg-config libuvmpager: $flags" [ -n "$flags" ]
cc -Wall -Werror -o "$d/example" "$EXAMPLE" $flags
check "the example of uvmpager(3) builds against the installed library" [ -x "$d/example" ]
# (a sanitized library wants its runtime loaded first: not in a plain program)
[ "$(intro b_sanitize)" = none ] && check "... and runs against it (no daemon: exit 1, says so)" \
	bash -c "UVMPAGER_SOCKET=$d/none LD_LIBRARY_PATH=$d$libdir '$d/example' 2>&1 | grep -q 'no uvmpagerd'"
finish
