#!/usr/bin/env bash
# tests/bench/run.sh — goscope's benchmarks (`make bench`, after `make all`); not part of CI.
#
#   bash tests/bench/run.sh [NAME...]     run the named benchmarks (default: all of them)
#
# Each benchmark is a script tests/bench/NAME.sh, registered below with `run_bench NAME`
# (to add one, append a `run_bench NAME` line at the end of this file). A benchmark prints its
# raw numbers and, for each goal, a line
#
#   RESULT name=value goal=... (ok|MISSED)
#
# with ratios measured side by side in the same run. Benchmarks run one at a time; they note
# the machine's load, since anything else running on the host (2 cores) skews them. Before
# each benchmark, run.sh waits up to BENCH_QUIET_WAIT seconds (default 60) for the machine to
# be idle (< 15 % CPU busy over 1 s) and then starts anyway, saying so.
#
# Exit status: 1 when a benchmark failed to run, else 0 (a MISSED goal is not a failure).
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$BENCH_DIR/../.." && pwd -P)
cd "$REPO" || exit 1
export GOSCOPE_REPO=$REPO

BENCH_SELECTED=("$@")
BENCH_FAILED=0
BENCH_RESULTS=$(mktemp)
# The exit status and the summary are set when the script ends, so `run_bench` lines appended
# below still run.
trap 'rc=$?; echo; echo "== summary"; cat "$BENCH_RESULTS"; rm -f "$BENCH_RESULTS";
      [ "$BENCH_FAILED" -ne 0 ] && exit 1; exit $rc' EXIT

# CPU busy fraction (percent, all CPUs) over 1 second, from /proc/stat.
cpu_busy_pct() {
	local a b
	read -ra a </proc/stat
	sleep 1
	read -ra b </proc/stat
	awk -v u1="${a[1]}" -v n1="${a[2]}" -v s1="${a[3]}" -v i1="${a[4]}" -v w1="${a[5]}" \
		-v q1="${a[6]}" -v sq1="${a[7]}" -v st1="${a[8]}" \
		-v u2="${b[1]}" -v n2="${b[2]}" -v s2="${b[3]}" -v i2="${b[4]}" -v w2="${b[5]}" \
		-v q2="${b[6]}" -v sq2="${b[7]}" -v st2="${b[8]}" 'BEGIN {
		busy = (u2+n2+s2+q2+sq2+st2) - (u1+n1+s1+q1+sq1+st1)
		idle = (i2+w2) - (i1+w1)
		printf "%.0f\n", (busy + idle) ? 100 * busy / (busy + idle) : 0 }'
}

wait_quiet() {
	local limit=${BENCH_QUIET_WAIT:-60} waited=0 busy
	while :; do
		busy=$(cpu_busy_pct)
		[ "$busy" -lt 15 ] && break
		if [ "$waited" -ge "$limit" ]; then
			echo "warning: machine still busy (${busy}% CPU over 1 s) after ${limit}s; starting anyway"
			return
		fi
		waited=$((waited + 1))
	done
	echo "machine: ${busy}% CPU busy over 1 s before start (waited ${waited}s)"
}

run_bench() {
	local name=$1 script=$BENCH_DIR/$1.sh rc
	if [ ${#BENCH_SELECTED[@]} -gt 0 ] && [[ " ${BENCH_SELECTED[*]} " != *" $name "* ]]; then
		return 0
	fi
	echo
	echo "== $name ($(date -u +%FT%TZ))"
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
	wait_quiet
	bash "$script" 2>&1 | tee >(grep '^RESULT' >>"$BENCH_RESULTS")
	rc=${PIPESTATUS[0]}
	echo "load average after $name: $(cut -d' ' -f1-3 /proc/loadavg)"
	if [ "$rc" -ne 0 ]; then
		echo "FAILED: $name (exit $rc)"
		echo "FAILED $name (exit $rc)" >>"$BENCH_RESULTS"
		BENCH_FAILED=1
	fi
	sleep 0.2 # lets tee's process substitution finish writing RESULT lines
}

run_bench symbolizer_lookup
run_bench cpu_overhead
run_bench block_pingpong
run_bench block_http
run_bench uprobe_detach
run_bench probe_sigkill
run_bench churn_rss
run_bench agent_overhead
run_bench agent_storage
run_bench goroutines_100k
run_bench heap_read
run_bench agent_discovery
run_bench labels_overhead
run_bench push_throughput
