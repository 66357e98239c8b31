# Shared by the run-* scripts: install what is missing, build.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
packages=(build-essential meson ninja-build pkg-config liburing-dev libfuse3-dev fuse3 check libncurses-dev tmux
	libinih-dev libsystemd-dev systemd systemd-container man-db python3
	libjemalloc-dev libjemalloc2 redis-server clang libclang-rt-14-dev libnbd-dev nbdkit nbd-server)

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "$(basename "$0"): run as root (userfaultfd on shared memory, swap files, FUSE)" >&2
		exit 1
	fi
}

ensure_packages() {
	local missing=()
	for p in "${packages[@]}" "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "== installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

# build DIR [meson options...]
build() {
	local dir=$1
	shift
	if [ ! -f "$top/$dir/build.ninja" ]; then
		meson setup "$top/$dir" "$top" "$@" >/dev/null
	fi
	# quiet when it builds; what failed, when it does not (set -e would end the run silently)
	if ! ninja -C "$top/$dir" >"$top/$dir/ninja.log" 2>&1; then
		tail -n 40 "$top/$dir/ninja.log" >&2
		return 1
	fi
}
