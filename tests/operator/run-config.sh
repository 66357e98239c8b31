#!/usr/bin/env bash
# The config file refuses each kind of bad input with file:line, key and
# reason (uvmpagerd --check-config: nothing starts, no root needed); the
# example config, the flags and uvmpager.conf(5) name the same keys.
set -u
. "$(dirname "$0")/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
conf=$work/uvmpager.conf

# refused LINE_NO 'CONTENT' 'EXPECTED MESSAGE (after file:line: )'
refused() {
	local line=$1 content=$2 want=$3 err st
	printf '%b' "$content" >"$conf"
	err=$("$UVMPAGERD" -c "$conf" --check-config 2>&1 >/dev/null); st=$?
	if [ $st -eq 2 ] && grep -qF "$conf:$line: $want" <<<"$err"; then
		ok "refused: $(head -c 40 <<<"$want")"
	else
		fail "'$content': exit $st, '$err' (wanted '$conf:$line: $want')"
	fi
}

refused 2 '# a comment\nno-such-key = 1\n' "no-such-key: unknown key"
refused 1 'budget = 12Q\n' "budget: '12Q' is not 'auto' or a size"
refused 1 'budget = 0\n' "budget: '0' is not 'auto' or a size above 0"
refused 1 'swap-size = -1\n' "swap-size: '-1' is not a size"
refused 1 'client-budget-max = 1.5G\n' "client-budget-max: '1.5G' is not a size"
refused 3 '\n\nforeground = maybe\n' "foreground: 'maybe' is not a boolean (yes/no, true/false, on/off, 1/0)"
refused 1 'socket-mode = 0999\n' "socket-mode: '0999' is not an octal mode"
refused 1 'socket-mode = 01777\n' "socket-mode: '01777' is not an octal mode"
refused 1 'launder-percent = 101\n' "launder-percent: '101' is not a percentage"
refused 1 'status-interval = 0\n' "status-interval: '0' is not a number of seconds"
refused 1 'log-level = loud\n' "log-level: 'loud' is not one of error, warning, info, debug"
refused 1 'io = aio\n' "io: 'aio' is not one of auto, io_uring, threads"
refused 1 'tracking = dirty\n' "tracking: 'dirty' is not one of"
refused 1 'swap-file = var/swap\n' "swap-file: 'var/swap' is not an absolute path"
refused 1 'mount = run\n' "mount: 'run' is not an absolute path"
refused 1 'socket =\n' "socket: needs a value"
refused 2 'budget = 1G\nbudget = 2G\n' "budget: set twice (first on line 1)"
refused 3 'io = auto\n[daemon]\nbudget = 1G\n' "budget: sections are not used ([daemon])"
refused 1 'just words\n' "not a 'key = value' line"
refused 2 "io = auto\nbudget = $(printf '1%.0s' $(seq 300))\nio = auto\n" "line: longer than 198 characters"
refused 1 'budget = 1G # inline comments are not comments\n' "budget: '1G # inline"

# the group is resolved with the rest: a name that does not exist stops it
printf 'socket-group = nosuch-uvmpager\n' >"$conf"
err=$("$UVMPAGERD" -c "$conf" --check-config 2>&1); st=$?
v=no; [ $st -eq 2 ] && grep -q "no group 'nosuch-uvmpager'" <<<"$err" && v=yes
check "socket-group nosuch: exit 2, named" [ $v = yes ]
# an explicit file that is missing is an error, the default one is not
"$UVMPAGERD" -c "$work/missing.conf" --check-config >/dev/null 2>&1
check "a missing -c FILE: exit 2" [ $? -eq 2 ]
# the command line wins over the file
printf 'budget = 0\n' >"$conf"
"$UVMPAGERD" -c "$conf" --budget 1G --check-config >/dev/null 2>&1
check "the file is refused even when the flag would win" [ $? -eq 2 ]

# every key of --help is in the example config and uvmpager.conf(5), and back
keys=$("$UVMPAGERD" --help | sed -n 's/^  --\([a-z-]*\).*/\1/p' | grep -vx 'config\|check-config\|help\|version' | sort)
check "--help lists 26 settings" [ "$(wc -l <<<"$keys")" -eq 26 ]
example=$(sed -n 's/^# *\([a-z-]*\) = .*/\1/p' "$EXAMPLE_CONFIG" | sort -u)
check "the example config names every setting" [ "$keys" = "$example" ]
sed -n 's/^# *\([a-z-]*\) = \(.*\)/\1 = \2/p' "$EXAMPLE_CONFIG" | grep -v '^socket-group' >"$conf"
"$UVMPAGERD" -c "$conf" --check-config >/dev/null
check "the example config's values, uncommented, are all accepted" [ $? -eq 0 ]
if [ -n "${CONF_MAN:-}" ]; then
	man_keys=$(sed -n 's/^\.B \([a-z-]*\) = .*/\1/p' "$CONF_MAN" | sort -u)
	check "uvmpager.conf(5) documents every setting" [ "$keys" = "$man_keys" ]
	flags=$(sed 's/\\-/-/g' "$DAEMON_MAN" | grep '^\.B' | grep -o -- '--[a-z-]*' | cut -c3- | sort -u)
	missing=$(comm -23 <(echo "$keys") <(echo "$flags"))
	check "uvmpagerd(8) documents every flag${missing:+ (missing: $missing)}" [ -z "$missing" ]
fi
finish
