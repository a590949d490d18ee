#!/usr/bin/env bash
# uprobe_detach — what detaching uprobes costs the probed process, per kind of link (run by
# tests/bench/run.sh). goscope block's throttled mode attaches and detaches its probes once
# per duty cycle, so this is part of its cost at every budget.
#
# Target: tests/go/pingpong (Go 1.27). Empty probes (tests/bench/uprobe_detach.c) on
# runtime.gopark and runtime.ready at goscope's probe points (their stack-check branch), as
# perf-event uprobes (one link each) and as one uprobe_multi link (Linux >= 6.6), alternating,
# BENCH_UD_ROUNDS rounds (default 3). Per round: hits/s while attached, how long the detach
# takes and how many hits arrive during it (breakpoints still trapping).
#   RESULT uprobe_detach_trap_ms_perf / _multi = median of hits during detach / hits per ms:
#     the time the breakpoints kept trapping while being detached (no goal).
set -euo pipefail

REPO=${GOSCOPE_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
cd "$REPO"
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh
OUT=$REPO/build/bench
mkdir -p "$OUT"
ROUNDS=${BENCH_UD_ROUNDS:-3}
gcc -O2 -Wall -Iinclude -Ibuild tests/bench/uprobe_detach.c -o "$OUT/uprobe_detach" -lbpf
TARGET=$(bash tests/gobuild.sh pingpong 1.27 default)

# off FUNC DELTA: file offset of FUNC + DELTA (text is mapped at file offset - 0x400000 in
# Go's default non-PIE layout; checked against the first LOAD segment).
readelf -lW "$TARGET" | awk '$1 == "LOAD" {exit !($2 == "0x000000" && $3 == "0x0000000000400000")}' ||
	{ echo "unexpected layout of $TARGET" >&2; exit 1; }
off() { echo $((0x$(nm "$TARGET" | awk -v f="$1" '$3 == f {print $1}') - 0x400000 + $2)); }
OFFS="$(off runtime.gopark 4) $(off runtime.ready 4)"

declare -A trap_ms=([perf]="" [multi]="")
for r in $(seq "$ROUNDS"); do
	for kind in perf multi; do
		coproc PP { exec "$TARGET" -duration 3s; }
		read -r line <&"${PP[0]}"
		pid=${line#ready }
		sleep 0.3
		# shellcheck disable=SC2086
		res=$("$OUT/uprobe_detach" "$kind" "$pid" $OFFS)
		read -r _ <&"${PP[0]}" || true
		wait "$PP_PID" 2>/dev/null || true
		echo "round $r: $res"
		t=$(awk -v d="$(field hits_during_detach "$res")" -v r="$(field hits_per_s "$res")" \
			'BEGIN { printf "%.1f\n", (r > 0 ? d / (r / 1000) : 0) }')
		trap_ms[$kind]+="$t "
	done
done
# shellcheck disable=SC2086
echo "RESULT uprobe_detach_trap_ms_perf=$(median ${trap_ms[perf]}) goal=none"
# shellcheck disable=SC2086
echo "RESULT uprobe_detach_trap_ms_multi=$(median ${trap_ms[multi]}) goal=none"
