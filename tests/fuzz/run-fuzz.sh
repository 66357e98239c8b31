#!/usr/bin/env bash
# Runs the fuzz targets for FUZZ_SECONDS in all (split evenly: each gets
# FUZZ_SECONDS / targets, at least 1 s) on a copy of its committed corpus
# (corpus/<target>/: seeds and regression inputs). Fails on a crash, leak
# or sanitizer report; prints executions and corpus size per target. New
# inputs stay in the scratch copy: add the interesting ones by hand.
# libFuzzer runs one process on one core: the targets run side by side, as
# many at once as there are CPUs (FUZZ_JOBS), each for its full share.
set -u
bin=$(realpath "$1") corpus=$(realpath "$2") total=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
targets=()
for exe in "$bin"/fuzz_*; do
	[ -f "$exe" ] && [ -x "$exe" ] && targets+=("$exe")
done
[ ${#targets[@]} -gt 0 ] || { echo "no fuzz targets in $bin"; exit 1; }
secs=$(( total / ${#targets[@]} ))
[ "$secs" -ge 1 ] || secs=1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# one_target EXE: its report on stdout, its verdict in the exit status
one_target() {
	local exe=$1 name work out rc execs status=0
	name=${exe##*/fuzz_}
	work=$scratch/$name
	mkdir -p "$work"
	cp "$corpus/$name"/* "$work"/ 2>/dev/null
	# first: every committed input, once (the regressions)
	if ! "$exe" -runs=0 -close_fd_mask=2 "$corpus/$name" >"$work.log" 2>&1; then
		echo "fuzz $name: a committed input fails:"; tail -40 "$work.log"; status=1
	fi
	out=$(cd "$work" && "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
		-max_len=4200 -close_fd_mask=2 -print_final_stats=1 "$work" 2>&1)
	rc=$?
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' <<<"$out" | grep -o '[0-9]*$')
	echo "fuzz $name: rc $rc, ${execs:-?} executions in ${secs}s, corpus $(ls "$corpus/$name" | wc -l) committed -> $(ls "$work" | grep -v '^crash-\|^leak-\|^timeout-' | wc -l)"
	if [ $rc -ne 0 ]; then
		echo "$out" | tail -60
		ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null
		status=1
	fi
	rm -rf "$work" "$work.log"
	return $status
}

status=0
pids=() names=()
for exe in "${targets[@]}"; do
	# at most $jobs at once: wait for the oldest before starting another
	if [ ${#pids[@]} -ge "$jobs" ]; then
		wait "${pids[0]}" || status=1
		cat "$scratch/${names[0]}.report"
		pids=("${pids[@]:1}") names=("${names[@]:1}")
	fi
	name=${exe##*/fuzz_}
	one_target "$exe" >"$scratch/$name.report" 2>&1 &
	pids+=($!) names+=("$name")
done
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || status=1
	cat "$scratch/${names[$i]}.report"
done
exit $status
