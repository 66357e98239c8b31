#!/usr/bin/env bash
# Runs the fuzz targets for FUZZ_SECONDS in all (split evenly: each gets
# FUZZ_SECONDS / targets, at least 1 s) on a copy of its committed corpus
# (corpus/<target>/: seeds and regression inputs). Fails on a crash, leak
# or sanitizer report; prints executions and corpus size per target. New
# inputs stay in the scratch copy: add the interesting ones by hand.
set -u
bin=$(realpath "$1") corpus=$(realpath "$2") total=${FUZZ_SECONDS:-60}
status=0
targets=()
for exe in "$bin"/fuzz_*; do
	[ -f "$exe" ] && [ -x "$exe" ] && targets+=("$exe")
done
[ ${#targets[@]} -gt 0 ] || { echo "no fuzz targets in $bin"; exit 1; }
secs=$(( total / ${#targets[@]} ))
[ "$secs" -ge 1 ] || secs=1
for exe in "${targets[@]}"; do
	name=${exe##*/fuzz_}
	work=$(mktemp -d)
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
done
exit $status
