#!/usr/bin/env bash
# probe_sigkill — can killing goscope leave a breakpoint in the profiled process (run by
# tests/bench/run.sh)? A stand-in for goscope attaches and detaches uprobes on a busy Go
# ping-pong in a loop, as a duty-cycled block capture does, and is SIGKILLed at a random moment
# (20–400 ms in); then the target's code bytes at every probe point are compared with the
# binary's. BENCH_PS_KILLS kills (default 100) of each kind, alternating:
#   - direct: links created by the killed process itself (goscope before the probe keeper);
#   - keeper: links created by the probe keeper (agent/capture/probe_keeper.c).
#   RESULT probe_sigkill_keeper_leaks = kills that left a breakpoint, goal 0;
# then the real `goscope block` (duty-cycled, default --max-overhead) on a busy ping-pong,
# SIGKILLed 1-4 s in, BENCH_PS_KILLS times:
#   RESULT probe_sigkill_block_leaks = kills that left a breakpoint, goal 0.
# The loop is tests/integration/test_probe_keeper.c (make test runs 10 kills of it).
set -euo pipefail

REPO=${GOSCOPE_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
cd "$REPO"
KILLS=${BENCH_PS_KILLS:-100}
make -s build/tests/integration >/dev/null
run() {
	GOSCOPE_KEEPER_TEST_DIRECT=$1 GOSCOPE_KEEPER_TEST_KILLS=$2 GOSCOPE_SRC_DIR=$REPO \
		GOSCOPE_BIN=$REPO/build/goscope GOSCOPE_BUILD_DIR=$REPO/build \
		build/tests/integration --filter 'probe_keeper/sigkill_leaves_no_breakpoint' 2>&1 |
		awk '/^probe_keeper:/ {print $(NF-5)}'
}
direct=0 keeper=0
half=$((KILLS / 2))
for round in 1 2; do
	d=$(run 1 "$half"); k=$(run 0 "$half")
	echo "round $round: direct $d of $half kills left breakpoints, keeper $k of $half"
	direct=$((direct + d)) keeper=$((keeper + k))
done
echo "direct: $direct of $((2 * half)) kills left breakpoints"
echo "keeper: $keeper of $((2 * half)) kills left breakpoints"
status=ok
[ "$keeper" -eq 0 ] || status=MISSED
echo "RESULT probe_sigkill_keeper_leaks=$keeper goal=0 ($status)"
echo "RESULT probe_sigkill_direct_leaks=$direct (no goal: the defect the keeper removes)"
# The real thing: `goscope block` at the default --max-overhead on a busy ping-pong, SIGKILLed
# 1-4 s in, KILLS times (tests/integration/test_block.c, make test runs 5).
real=$(GOSCOPE_BLOCK_SIGKILLS=$KILLS GOSCOPE_SRC_DIR=$REPO GOSCOPE_BIN=$REPO/build/goscope \
	GOSCOPE_BUILD_DIR=$REPO/build build/tests/integration \
	--filter 'block/sigkill_duty_cycled_leaves_no_breakpoint' 2>&1 |
	awk '/^block: .*SIGKILLs left breakpoints/ {print $2; exit}')
echo "goscope block: ${real:-?} of $KILLS kills left breakpoints"
status=ok
[ "${real:-1}" -eq 0 ] || status=MISSED
echo "RESULT probe_sigkill_block_leaks=${real:-?} goal=0 ($status)"
