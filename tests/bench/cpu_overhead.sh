#!/usr/bin/env bash
# cpu_overhead — what `goscope cpu` costs a CPU-bound Go program (run by tests/bench/run.sh).
#
# Target: tests/go/cpuburn (Go 1.27, default build) with -duration 10s -goroutines 2, which
# saturates both cores and prints "done <work units>" at exit. Pairs of runs, one without and
# one with `goscope cpu --pid PID --duration 0 -F 99` (started right after the target's
# "ready", ending when the target exits), the order alternating from pair to pair.
#
#   throughput ratio = units(with goscope) / units(without), per pair; median and mean.
#     Goal: median >= 0.995.
#   CPU overhead = goscope's CPU time / the target's CPU time (user+sys of each, from wait4),
#     in two parts: userspace (goscope's user+sys: load, ring buffer, symbolization, pprof) and
#     BPF (run_time_ns of goscope's programs, from `bpftool prog show`, with the sysctl
#     kernel.bpf_stats_enabled set to 1 during this benchmark and restored after).
#     Goal: median (userspace + BPF) <= 0.5 %.
#
# Each run also reports how much CPU other processes of this machine used meanwhile (busy time
# from /proc/stat minus the target's and goscope's), since anything else competes with the
# target for the 2 cores. A pair where others used more than BENCH_CPU_OTHERS_MAX_MS (default
# 400 ms, 2 % of the 20 CPU-seconds of a run) in either run is "contaminated": it is printed
# but left out of the RESULTs, and another pair is run instead, up to BENCH_CPU_MAX_PAIRS
# (default 8, to stay under 3 minutes). When fewer than 3 pairs are clean, the RESULTs use all
# pairs and say so. The spread of the runs without goscope is printed too: noise from outside
# the machine (other VMs on the host) does not show in /proc/stat, and a ratio goal of 0.995 is
# only meaningful when that spread is well below 0.5 %.
#
# Environment: BENCH_CPU_PAIRS (clean pairs wanted, default 5), BENCH_CPU_MAX_PAIRS (default
# 8), BENCH_CPU_DURATION (default 10s), BENCH_CPU_FREQUENCY (default 99),
# BENCH_CPU_OTHERS_MAX_MS (default 400).
set -euo pipefail

REPO=${GOSCOPE_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
cd "$REPO"
OUT=$REPO/build/bench
mkdir -p "$OUT"
PAIRS=${BENCH_CPU_PAIRS:-5}
MAX_PAIRS=${BENCH_CPU_MAX_PAIRS:-8}
OTHERS_MAX=${BENCH_CPU_OTHERS_MAX_MS:-400}
DURATION=${BENCH_CPU_DURATION:-10s}
FREQ=${BENCH_CPU_FREQUENCY:-99}
GOSCOPE=$REPO/build/goscope
TMP=$(mktemp -d /tmp/goscope-bench-cpu.XXXXXX)

[ -x "$GOSCOPE" ] || { echo "build/goscope missing: run make all" >&2; exit 1; }
gcc -O2 -Wall -D_GNU_SOURCE tests/bench/cpu_bench_helper.c -o "$OUT/cpu_bench_helper"
HELPER=$OUT/cpu_bench_helper
TARGET=$(bash tests/gobuild.sh cpuburn 1.27 default)

old_stats=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
	sysctl -q kernel.bpf_stats_enabled="$old_stats" || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
sysctl -q kernel.bpf_stats_enabled=1

field() { # KEY FILE-or-TEXT... -> value of KEY=VALUE (first)
	local k=$1; shift
	printf '%s\n' "$@" | tr ' ' '\n' | awk -F= -v k="$k" '$1 == k {print $2; exit}'
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
	if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
mean() { printf '%s\n' "$@" | awk '{s += $1} END { printf "%.4f\n", NR ? s / NR : 0 }'; }
result() { # NAME VALUE OP GOAL
	local ok
	ok=$(awk -v v="$2" -v op="$3" -v g="$4" 'BEGIN {
		if (v == "nan") print "MISSED"; else if (op == ">=") print (v >= g ? "ok" : "MISSED");
		else print (v <= g ? "ok" : "MISSED") }')
	echo "RESULT $1=$2 goal=$3$4 ($ok)"
}
busy_ms() { # CPU time (ms) all CPUs spent busy since boot, from /proc/stat
	head -1 /proc/stat | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f\n", ($2+$3+$4+$7+$8+$9) * 1000 / hz }'
}

# run_one MODE(without|with) TAG: runs the target (and goscope); leaves $TMP/TAG.* files and
# prints one summary line; sets UNITS TCPU GCPU BPFNS OTHERS.
run_one() {
	local mode=$1 tag=$2 tw gw pid b0 b1 n=0
	rm -f "$TMP/$tag".*
	b0=$(busy_ms)
	"$HELPER" -o "$TMP/$tag.target" -- "$TARGET" -duration "$DURATION" -goroutines 2 \
		>"$TMP/$tag.out" &
	tw=$!
	if [ "$mode" = with ]; then
		until grep -q '^ready' "$TMP/$tag.out" 2>/dev/null; do
			sleep 0.005
			n=$((n + 1))
			[ $n -lt 2000 ] || { echo "target did not start" >&2; return 1; }
		done
		pid=$(awk '/^ready/ {print $2}' "$TMP/$tag.out")
		"$HELPER" --bpf -o "$TMP/$tag.goscope" -- "$GOSCOPE" cpu --pid "$pid" --duration 0 \
			-F "$FREQ" -o "$TMP/$tag.pb.gz" 2>"$TMP/$tag.err" &
		gw=$!
	fi
	wait "$tw" || { echo "target failed: $(cat "$TMP/$tag.target" 2>/dev/null)" >&2; return 1; }
	if [ "$mode" = with ]; then
		wait "$gw" || { echo "goscope failed: $(cat "$TMP/$tag.err")" >&2; return 1; }
	fi
	b1=$(busy_ms)
	UNITS=$(awk '/^done/ {print $2}' "$TMP/$tag.out")
	local t
	t=$(cat "$TMP/$tag.target")
	TCPU=$(awk -v u="$(field user_ms "$t")" -v s="$(field sys_ms "$t")" 'BEGIN { print u + s }')
	GCPU=0 BPFNS=0
	if [ "$mode" = with ]; then
		local g
		g=$(head -1 "$TMP/$tag.goscope")
		GCPU=$(awk -v u="$(field user_ms "$g")" -v s="$(field sys_ms "$g")" 'BEGIN { print u + s }')
		BPFNS=$(awk '/^bpf / { for (i = 1; i <= NF; i++) if ($i ~ /^run_time_ns=/) { split($i, a, "="); s += a[2] } } END { print s + 0 }' "$TMP/$tag.goscope")
	fi
	# Busy CPU time not spent by the target or goscope: other processes (and this script);
	# /proc/stat ticks, so +-20 ms.
	OTHERS=$(awk -v b="$((b1 - b0))" -v t="$TCPU" -v g="$GCPU" 'BEGIN { printf "%.0f\n", b - t - g }')
	printf '  %-8s %-7s units=%s target_cpu_ms=%s units_per_cpu_s=%s' "$tag" "$mode" "$UNITS" \
		"$TCPU" "$(awk -v u="$UNITS" -v t="$TCPU" 'BEGIN { printf "%.0f", t ? 1000 * u / t : 0 }')"
	if [ "$mode" = with ]; then
		printf ' goscope_cpu_ms=%s bpf_ns=%s' "$GCPU" "$BPFNS"
	fi
	printf ' others_cpu_ms=%s load=%s\n' "$OTHERS" "$(cut -d' ' -f1 /proc/loadavg)"
	if [ "$mode" = with ]; then
		{ grep -v '^rusage' "$TMP/$tag.goscope" || true; cat "$TMP/$tag.err"; } | sed 's/^/             /'
	fi
}

echo "cpu_overhead: $TARGET -duration $DURATION -goroutines 2; goscope cpu -F $FREQ; $PAIRS clean pairs wanted (at most $MAX_PAIRS), alternating order"
echo "host: $(nproc) CPUs, $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg); kernel.bpf_stats_enabled was $old_stats, set to 1"
# per pair: ratio, clean?, and the with-run's CPU percentages
all_r=() all_u=() all_b=() all_t=() all_wo=() clean_r=() clean_u=() clean_b=() clean_t=() clean_wo=()
others=()
p=0
while [ ${#clean_r[@]} -lt "$PAIRS" ] && [ "$p" -lt "$MAX_PAIRS" ]; do
	p=$((p + 1))
	if ((p % 2)); then order=(without with); else order=(with without); fi
	dirty=0
	for m in "${order[@]}"; do
		run_one "$m" "pair$p-$m"
		others+=("$OTHERS")
		[ "$OTHERS" -le "$OTHERS_MAX" ] || dirty=1
		if [ "$m" = with ]; then
			u_with=$UNITS
			up=$(awk -v g="$GCPU" -v t="$TCPU" 'BEGIN { printf "%.4f\n", 100 * g / t }')
			bp=$(awk -v b="$BPFNS" -v t="$TCPU" 'BEGIN { printf "%.4f\n", 100 * b / 1e6 / t }')
			tp=$(awk -v g="$GCPU" -v b="$BPFNS" -v t="$TCPU" 'BEGIN { printf "%.4f\n", 100 * (g + b / 1e6) / t }')
		else
			u_without=$UNITS
		fi
	done
	r=$(awk -v a="$u_with" -v b="$u_without" 'BEGIN { printf "%.4f\n", a / b }')
	all_r+=("$r") all_u+=("$up") all_b+=("$bp") all_t+=("$tp") all_wo+=("$u_without")
	if [ "$dirty" -eq 0 ]; then
		clean_r+=("$r") clean_u+=("$up") clean_b+=("$bp") clean_t+=("$tp") clean_wo+=("$u_without")
		state=clean
	else
		state="CONTAMINATED (other processes used > ${OTHERS_MAX} ms CPU): left out"
	fi
	echo "  pair $p (${order[0]} first): throughput ratio with/without = $r; goscope CPU/target CPU = $tp % (userspace $up %, BPF $bp %); $state"
done

spread() { # min, max and (max-min)/median in % of the numbers given
	printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
		m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2
		printf "min %d max %d spread %.1f %% of the median\n", a[1], a[NR], m ? 100 * (a[NR]-a[1]) / m : 0 }'
}
echo
echo "all $p pairs: throughput ratios ${all_r[*]}; median $(median "${all_r[@]}"), mean $(mean "${all_r[@]}")"
echo "all $p pairs: goscope CPU / target CPU (%): userspace ${all_u[*]}; BPF ${all_b[*]}; total ${all_t[*]}"
echo "other processes' CPU during each run (ms): ${others[*]}"
if [ ${#clean_r[@]} -ge 3 ]; then
	use=clean
	R=("${clean_r[@]}") U=("${clean_u[@]}") B=("${clean_b[@]}") T=("${clean_t[@]}") WO=("${clean_wo[@]}")
	echo "clean pairs (${#clean_r[@]} of $p): throughput ratios ${R[*]}; median $(median "${R[@]}"), mean $(mean "${R[@]}")"
else
	use=all
	R=("${all_r[@]}") U=("${all_u[@]}") B=("${all_b[@]}") T=("${all_t[@]}") WO=("${all_wo[@]}")
	echo "warning: only ${#clean_r[@]} clean pairs of $p: the RESULTs use all pairs, contaminated ones included"
fi
echo "goscope CPU / target CPU median over $use pairs (%): userspace $(median "${U[@]}"), BPF $(median "${B[@]}"), total $(median "${T[@]}")"
echo "noise: work units of the runs without goscope ($use pairs): $(spread "${WO[@]}")"
result cpu_overhead_throughput_ratio "$(median "${R[@]}")" ">=" 0.995
result cpu_overhead_cpu_pct "$(median "${T[@]}")" "<=" 0.5
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
