#!/usr/bin/env bash
# block_pingpong — what `goscope block` costs per blocking event vs a bare uprobe (run by
# tests/bench/run.sh).
#
# Target: tests/go/pingpong (Go 1.27, default build), two goroutines ping-ponging over
# unbuffered channels for BENCH_PP_SECONDS (default 3) and printing round trips/s. Runs, side
# by side and alternating, R rounds (BENCH_PP_ROUNDS, default 2) of:
#   base    no probe
#   bare    an empty uprobe (tests/bench/block_bare.c: block.bpf.c's block_calibrate, a
#           per-CPU counter) on runtime.gopark at goscope's probe point (after the stack check)
#   block   goscope block --max-overhead 100 (unthrottled: gopark + ready + execute probes)
# Cost per round trip added by X = 1/rate(X) - 1/rate(base).
#   RESULT pingpong_cost_ratio = cost(block) / cost(bare); goal <= 1.3.
set -euo pipefail

REPO=${GOSCOPE_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
cd "$REPO"
OUT=$REPO/build/bench
mkdir -p "$OUT"
SECS=${BENCH_PP_SECONDS:-3}
ROUNDS=${BENCH_PP_ROUNDS:-2}
GOSCOPE=$REPO/build/goscope
[ -x "$GOSCOPE" ] || { echo "build/goscope missing: run make all" >&2; exit 1; }
gcc -O2 -Wall -Iinclude -Ibuild tests/bench/block_bare.c -o "$OUT/block_bare" -lbpf
TARGET=$(bash tests/gobuild.sh pingpong 1.27 default)

# File offset of runtime.gopark + 10 (cmp 0x10(%r14),%rsp; jbe rel32 — checked below).
addr=$(nm "$TARGET" | awk '$3 == "runtime.gopark" {print $1}')
prologue=$(objdump -d "$TARGET" --start-address=0x$addr --stop-address=$((0x$addr + 10)) |
	grep -E '^ +[0-9a-f]+:' | awk -F'\t' '{print $2}' | tr -d ' \n')
case "$prologue" in
493b66100f86*) ;;
*) echo "unexpected gopark prologue $prologue" >&2; exit 1 ;;
esac
off=
a=$((0x$addr + 10))
while read -r typ o v _ fs _; do
	[ "$typ" = LOAD ] || continue
	if [ "$a" -ge $((v)) ] && [ "$a" -lt $((v + fs)) ]; then off=$((a - v + o)); break; fi
done < <(readelf -lW "$TARGET" | awk '$1 == "LOAD"')
[ -n "$off" ] || { echo "no file offset for gopark" >&2; exit 1; }

run() { # MODE -> round trips/s
	local mode=$1 pid line rate probe=
	coproc PP { exec "$TARGET" -duration "${SECS}s"; }
	read -r line <&"${PP[0]}"
	pid=${line#ready }
	case $mode in
	bare) "$OUT/block_bare" "$pid" "$off" $((SECS + 2)) 2>/dev/null & probe=$! ;;
	block) "$GOSCOPE" block --pid "$pid" --max-overhead 100 --duration 0 -o /dev/null \
		2>/dev/null & probe=$! ;;
	esac
	read -r line <&"${PP[0]}"
	rate=${line#roundtrips_per_sec }
	wait "$PP_PID" 2>/dev/null || true
	[ -n "$probe" ] && { kill "$probe" 2>/dev/null || true; wait "$probe" 2>/dev/null || true; }
	echo "$rate"
}

declare -A sum=([base]=0 [bare]=0 [block]=0)
for r in $(seq "$ROUNDS"); do
	for m in base bare block; do
		v=$(run $m)
		echo "round $r $m: $v round trips/s"
		sum[$m]=$(awk -v a="${sum[$m]}" -v b="$v" 'BEGIN{print a+b}')
	done
done
# NB: the probes attach a few ms after the target starts; that start-up window is the same
# for bare and block.
awk -v b="${sum[base]}" -v p="${sum[bare]}" -v g="${sum[block]}" -v n="$ROUNDS" 'BEGIN {
	b /= n; p /= n; g /= n
	cb = 1e9 / p - 1e9 / b; cg = 1e9 / g - 1e9 / b
	printf "mean round trips/s: base %.0f, bare uprobe %.0f, goscope block %.0f\n", b, p, g
	printf "added ns per round trip: bare %.0f, goscope block %.0f\n", cb, cg
	r = cg / cb
	printf "RESULT pingpong_cost_ratio=%.2f goal=<=1.3 (%s)\n", r, (r <= 1.3 ? "ok" : "MISSED")
}'
