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
#   bare2   empty uprobes at both probe points goscope hits here: runtime.gopark and
#           runtime.ready (its netpollready/injectglist probes never fire in a ping-pong)
#   block   goscope block --max-overhead 100 (unthrottled)
# Cost per round trip added by X = 1/rate(X) - 1/rate(base).
#   RESULT pingpong_cost_ratio = cost(block) / cost(bare); goal <= 1.3.
#   RESULT pingpong_cost_ratio_same_probes = cost(block) / cost(bare2): what goscope's BPF
#     programs add over the traps of the same probes (no goal of its own).
# A round trip is 2 blocking events (each side parks once and is readied once). The park
# and the wake are different instructions of different goroutines, so measuring the park ->
# ready delay takes 2 traps per event where the bare probe takes 1: cost(bare2)/cost(bare),
# printed too, is the floor of pingpong_cost_ratio for any design that probes the wake-up.
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

# probe_off FUNC: file offset of FUNC + 10, after its stack check (cmp 0x10(%r14),%rsp; jbe
# rel32 — checked), which is where goscope block probes it.
probe_off() {
	local addr prologue off= a typ o v fs
	addr=$(nm "$TARGET" | awk -v f="$1" '$3 == f {print $1}')
	prologue=$(objdump -d "$TARGET" --start-address=0x$addr --stop-address=$((0x$addr + 10)) |
		grep -E '^ +[0-9a-f]+:' | awk -F'\t' '{print $2}' | tr -d ' \n')
	case "$prologue" in
	493b66100f86*) ;;
	*) echo "unexpected $1 prologue $prologue" >&2; return 1 ;;
	esac
	a=$((0x$addr + 10))
	while read -r typ o v _ fs _; do
		[ "$typ" = LOAD ] || continue
		if [ "$a" -ge $((v)) ] && [ "$a" -lt $((v + fs)) ]; then off=$((a - v + o)); break; fi
	done < <(readelf -lW "$TARGET" | awk '$1 == "LOAD"')
	[ -n "$off" ] || { echo "no file offset for $1" >&2; return 1; }
	echo "$off"
}
off=$(probe_off runtime.gopark)
off_ready=$(probe_off runtime.ready)

run() { # MODE -> round trips/s
	local mode=$1 pid line rate probe=
	coproc PP { exec "$TARGET" -duration "${SECS}s"; }
	read -r line <&"${PP[0]}"
	pid=${line#ready }
	case $mode in
	bare) "$OUT/block_bare" "$pid" $((SECS + 2)) "$off" 2>/dev/null & probe=$! ;;
	bare2) "$OUT/block_bare" "$pid" $((SECS + 2)) "$off" "$off_ready" 2>/dev/null & probe=$! ;;
	block) "$GOSCOPE" block --pid "$pid" --max-overhead 100 --duration 0 -o /dev/null \
		2>/dev/null & probe=$! ;;
	esac
	read -r line <&"${PP[0]}"
	rate=${line#roundtrips_per_sec }
	wait "$PP_PID" 2>/dev/null || true
	[ -n "$probe" ] && { kill "$probe" 2>/dev/null || true; wait "$probe" 2>/dev/null || true; }
	echo "$rate"
}

declare -A sum=([base]=0 [bare]=0 [bare2]=0 [block]=0)
for r in $(seq "$ROUNDS"); do
	for m in base bare bare2 block; do
		v=$(run $m)
		echo "round $r $m: $v round trips/s"
		sum[$m]=$(awk -v a="${sum[$m]}" -v b="$v" 'BEGIN{print a+b}')
	done
done
# NB: the probes attach a few ms after the target starts; that start-up window is the same
# for bare and block.
awk -v b="${sum[base]}" -v p="${sum[bare]}" -v p2="${sum[bare2]}" -v g="${sum[block]}" -v n="$ROUNDS" 'BEGIN {
	b /= n; p /= n; p2 /= n; g /= n
	cb = 1e9 / p - 1e9 / b; cb2 = 1e9 / p2 - 1e9 / b; cg = 1e9 / g - 1e9 / b
	printf "mean round trips/s: base %.0f, bare uprobe on gopark %.0f, bare uprobes on gopark+ready %.0f, goscope block %.0f\n", b, p, p2, g
	printf "added ns per round trip: bare %.0f, bare gopark+ready %.0f, goscope block %.0f\n", cb, cb2, cg
	printf "floor for a design that probes the wake-up: cost(bare gopark+ready)/cost(bare) = %.2f\n", cb2 / cb
	r = cg / cb
	printf "RESULT pingpong_cost_ratio=%.2f goal=<=1.3 (%s)\n", r, (r <= 1.3 ? "ok" : "MISSED")
	printf "RESULT pingpong_cost_ratio_same_probes=%.2f goal=none\n", cg / cb2
}'
