#!/usr/bin/env bash
# block_http — what `goscope block` costs a net/http server under load (run by
# tests/bench/run.sh).
#
# tests/go/httpload (Go 1.27): ONE server process and ONE load generator (8 keep-alive
# clients, printing the requests done so far every 100 ms) run for the whole benchmark. Its
# time is cut into windows, in triples, the order rotating from triple to triple:
#   none     no capture, as long as the last capture window
#   default  `goscope block --duration W` at the default budget (--max-overhead 2)
#   full     `goscope block --duration W --max-overhead 100` (unthrottled)
# A capture window runs from goscope's start to its exit, so loading BPF, calibrating,
# attaching, and building the profile all count. Throughput in a window = requests done in
# it (interpolated between ticks) / the CPU time this VM had in it (steal from /proc/stat
# taken out, as in cpu_overhead.sh). Ratios are taken within a triple (adjacent windows see
# nearly the same host); the median over triples is reported.
#   RESULT http_ratio_default = rps(default) / rps(none); goal >= 0.97
#   RESULT http_ratio_unthrottled = rps(full) / rps(none) (reported, no goal)
# The noise floor is printed: the ratio of the "none" windows of consecutive triples.
#
# Throughput on this VM moves by 10-30 % between windows (the host), so each window also
# counts CPU: server + load generator (utime + stime from /proc/PID/stat; the BPF programs
# and the uprobe traps run in the server's threads and land in its stime) + goscope's own
# (wait4 rusage, tests/bench/cpu_bench_helper.c), per request. With both processes keeping
# the 2 CPUs busy, throughput is CPUs / CPU per request, so
#   RESULT http_cpu_ratio_default = CPU per request(none) / CPU per request(default)
# is the throughput ratio with the host's noise taken out (reported, no goal of its own).
#
# Environment: BENCH_HTTP_TRIPLES (default 5), BENCH_HTTP_SECONDS (capture length, default 10).
set -euo pipefail

REPO=${GOSCOPE_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
cd "$REPO"
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh
TRIPLES=${BENCH_HTTP_TRIPLES:-5}
SECS=${BENCH_HTTP_SECONDS:-10}
GOSCOPE=$REPO/build/goscope
[ -x "$GOSCOPE" ] || { echo "build/goscope missing: run make all" >&2; exit 1; }
BIN=$(bash tests/gobuild.sh httpload 1.27 default)
OUT=$REPO/build/bench
mkdir -p "$OUT"
gcc -O2 -Wall -D_GNU_SOURCE tests/bench/cpu_bench_helper.c -o "$OUT/cpu_bench_helper"
HELPER=$OUT/cpu_bench_helper
TMP=$(mktemp -d /tmp/goscope-bench-http.XXXXXX)
SPID= LPID=
cleanup() {
	[ -z "$LPID" ] || kill "$LPID" 2>/dev/null || true
	[ -z "$SPID" ] || kill "$SPID" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ns() { echo "${EPOCHREALTIME/./}000"; }
proc_cpu_ms() { # PID: utime + stime, ms
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.0f\n", ($12 + $13) * 1000 / hz }' \
		"/proc/$1/stat"
}
steal_ms() { head -1 /proc/stat | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f\n", $9 * 1000 / hz }'; }
# requests_at NS: requests done at time NS, interpolated between the load generator's ticks.
requests_at() {
	awk -v q="$1" '$1 == "tick" { t = $2 + 0; u = $3 + 0
		if (t >= q) { if (have) printf "%.1f\n", pu + (u - pu) * (q - pt) / (t - pt); else print u; found = 1; exit }
		pt = t; pu = u; have = 1 }
		END { if (!found) { if (have) print pu; else print "nan" } }' "$TMP/load.out"
}

coproc SRV { exec "$BIN" -serve; }
read -r _ SPID ADDR <&"${SRV[0]}"
"$BIN" -load "$ADDR" -duration 1s >/dev/null # warm-up
"$BIN" -load "$ADDR" -duration 24h -report 100ms >"$TMP/load.out" &
LPID=$!
sleep 1
echo "block_http: server pid $SPID, one load generator (8 clients) for the whole run; $TRIPLES triples of windows (none / goscope block --duration ${SECS}s at the default budget / unthrottled), rotating order"
echo "host: $(nproc) CPUs, $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"

NCPU=$(nproc)
last_len=$SECS
RATE=0 CPR=0
# window MODE TAG: one window; sets RATE (requests per unstolen CPU-second x CPUs) and CPR
# (CPU microseconds per request: server + load generator + goscope).
window() {
	local mode=$1 tag=$2 t0 t1 s0 s1 r0 r1 len c0 c1 gcpu=0
	s0=$(steal_ms)
	c0=$(($(proc_cpu_ms "$SPID") + $(proc_cpu_ms "$LPID")))
	t0=$(now_ns)
	case $mode in
	none) sleep "$last_len" ;;
	default) "$HELPER" -o "$TMP/$tag.rusage" -- "$GOSCOPE" block --pid "$SPID" \
		--duration "${SECS}s" -o "$TMP/$tag.pb.gz" 2>"$TMP/$tag.err" ;;
	full) "$HELPER" -o "$TMP/$tag.rusage" -- "$GOSCOPE" block --pid "$SPID" \
		--duration "${SECS}s" --max-overhead 100 -o "$TMP/$tag.pb.gz" 2>"$TMP/$tag.err" ;;
	esac
	t1=$(now_ns)
	c1=$(($(proc_cpu_ms "$SPID") + $(proc_cpu_ms "$LPID")))
	s1=$(steal_ms)
	if [ "$mode" != none ]; then
		local g
		g=$(head -1 "$TMP/$tag.rusage")
		gcpu=$(awk -v u="$(field user_ms "$g")" -v s="$(field sys_ms "$g")" 'BEGIN { print u + s }')
	fi
	sleep 0.25 # the tick after t1
	r0=$(requests_at "$t0")
	r1=$(requests_at "$t1")
	len=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }')
	[ "$mode" = none ] || last_len=$len
	RATE=$(awk -v a="$r0" -v b="$r1" -v l="$len" -v n="$NCPU" -v st="$((s1 - s0))" \
		'BEGIN { printf "%.1f\n", (b - a) / (l * n - st / 1000) * n }')
	CPR=$(awk -v a="$r0" -v b="$r1" -v c="$((c1 - c0))" -v g="$gcpu" 'BEGIN { printf "%.3f\n", (c + g) * 1000 / (b - a) }')
	printf '  %-16s len_s=%s requests=%.0f steal_ms=%s rps_per_unstolen_cpu=%s cpu_ms=%s goscope_cpu_ms=%s cpu_us_per_request=%s\n' \
		"$tag" "$len" "$(awk -v a="$r0" -v b="$r1" 'BEGIN { print b - a }')" "$((s1 - s0))" \
		"$RATE" "$((c1 - c0))" "$gcpu" "$CPR"
	[ "$mode" = none ] || sed 's/^/                   /' "$TMP/$tag.err"
}

r_def=() r_full=() c_def=() c_full=() noise=() prev_none=
modes=(none default full)
for t in $(seq "$TRIPLES"); do
	declare -A rate=() cpr=()
	for i in 0 1 2; do
		m=${modes[$(((i + t - 1) % 3))]}
		window "$m" "triple$t-$m"
		rate[$m]=$RATE cpr[$m]=$CPR
	done
	c_def+=("$(awk -v a="${cpr[none]}" -v b="${cpr[default]}" 'BEGIN { printf "%.4f\n", a / b }')")
	c_full+=("$(awk -v a="${cpr[none]}" -v b="${cpr[full]}" 'BEGIN { printf "%.4f\n", a / b }')")
	r_def+=("$(awk -v a="${rate[default]}" -v b="${rate[none]}" 'BEGIN { printf "%.4f\n", a / b }')")
	r_full+=("$(awk -v a="${rate[full]}" -v b="${rate[none]}" 'BEGIN { printf "%.4f\n", a / b }')")
	[ -z "$prev_none" ] || noise+=("$(awk -v a="${rate[none]}" -v b="$prev_none" 'BEGIN { printf "%.4f\n", a / b }')")
	prev_none=${rate[none]}
	echo "  triple $t: throughput default/none ${r_def[-1]}, unthrottled/none ${r_full[-1]};" \
		"CPU per request none/default ${c_def[-1]}, none/unthrottled ${c_full[-1]}"
	unset rate cpr
done
echo
echo "default/none: ${r_def[*]}; median $(median "${r_def[@]}"), mean $(mean "${r_def[@]}")"
echo "unthrottled/none: ${r_full[*]}; median $(median "${r_full[@]}"), mean $(mean "${r_full[@]}")"
echo "CPU per request none/default: ${c_def[*]}; median $(median "${c_def[@]}")"
echo "CPU per request none/unthrottled: ${c_full[*]}; median $(median "${c_full[@]}")"
echo "noise (none windows of consecutive triples, should be 1): ${noise[*]}"
result http_ratio_default "$(median "${r_def[@]}")" ">=" 0.97
echo "RESULT http_ratio_unthrottled=$(median "${r_full[@]}") goal=none (reported)"
echo "RESULT http_cpu_ratio_default=$(median "${c_def[@]}") goal=none (reported)"
echo "RESULT http_cpu_ratio_unthrottled=$(median "${c_full[@]}") goal=none (reported)"
