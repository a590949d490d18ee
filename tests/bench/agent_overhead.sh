#!/usr/bin/env bash
# agent_overhead — what `goscope agent` costs a node full of Go processes (run by
# tests/bench/run.sh).
#
# Workload (the issue's): 50 Go processes — BENCH_AG_BUSY (default 15) busy ones burning
# BENCH_AG_DUTY (default 0.05) of a CPU each (tests/go/churn -mode busy), 30 idle ones
# (tests/go/idle: sleeping goroutines), and 5 that exit and restart every 3 s
# (tests/go/churn -mode short). All of them run in one cpuacct cgroup, so the CPU they use is
# counted exactly, also that of processes that exited.
#
# Phase 1 (BENCH_AG_SECONDS, default 600): the agent at 99 Hz, windows of 10 s, runs the whole
# time in its own cgroup. Every 10 s: its RSS and open fds. At the end:
#   RESULT agent_rss_max_mib         goal <= 48
#   RESULT agent_rss_drift_pct       mean RSS of the last half vs the first half, goal <= 10
#   RESULT agent_fd_growth           fds at the end - fds after the first minute, goal <= 2
#   RESULT agent_cpu_pct             (agent user + sys + its BPF programs' run time) / the
#                                    profiled processes' CPU, after the first minute, goal <= 0.3
# The BPF run time comes from run_time_ns of the programs the agent holds (the fdinfo of its
# program fds), with kernel.bpf_stats_enabled set to 1 during the run and restored after.
#
# Phase 2 (BENCH_AG_PAIRS pairs, default 6, windows of BENCH_AG_WINDOW s, default 20): a
# CPU-bound target (tests/go/cpuburn -goroutines 2, which saturates both cores) beside the same
# workload; windows with the agent running (started before the window, so that its steady
# state is measured: its start-up is phase 1's business) and without, the order alternating.
# Throughput = work units / unstolen CPU-seconds, as in cpu_overhead.sh.
#   RESULT agent_throughput_ratio    median with/without, goal >= 0.995
# and the noise floor: the ratio of adjacent windows of the same kind (ideally 1).
set -euo pipefail

REPO=${GOSCOPE_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
cd "$REPO"
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh
SECONDS_TOTAL=${BENCH_AG_SECONDS:-600}
NBUSY=${BENCH_AG_BUSY:-15}
NIDLE=${BENCH_AG_IDLE:-30}
NCHURN=${BENCH_AG_CHURN:-5}
DUTY=${BENCH_AG_DUTY:-0.05}
PAIRS=${BENCH_AG_PAIRS:-6}
WIN=${BENCH_AG_WINDOW:-20}
GOSCOPE=${BENCH_AG_GOSCOPE:-$REPO/build/goscope}
[ -x "$GOSCOPE" ] || { echo "build/goscope missing: run make all" >&2; exit 1; }
churn=$(bash tests/gobuild.sh churn 1.27 default)
idle=$(bash tests/gobuild.sh idle 1.24 stripped)
burn=$(bash tests/gobuild.sh cpuburn 1.27 default)
TMP=$(mktemp -d /tmp/goscope-bench-agent.XXXXXX)
CG_ROOT=/sys/fs/cgroup/cpuacct
[ -d "$CG_ROOT" ] || { echo "needs the cgroup v1 cpuacct hierarchy at $CG_ROOT" >&2; exit 1; }
CG_T=$CG_ROOT/goscope-bench-targets.$$
CG_A=$CG_ROOT/goscope-bench-agent.$$
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
APID= TPID=
pids=()

stop_agent() {
	[ -z "$APID" ] || { kill "$APID" 2>/dev/null || true; wait "$APID" 2>/dev/null || true; }
	APID=
}
cleanup() {
	touch "$TMP/stop"
	stop_agent
	[ -z "$TPID" ] || kill "$TPID" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	sysctl -q kernel.bpf_stats_enabled="$old_stats" || true
	for cg in "$CG_T" "$CG_A"; do
		[ -d "$cg" ] || continue
		while read -r p; do echo "$p" >"$CG_ROOT/cgroup.procs" 2>/dev/null || true; done <"$cg/cgroup.procs"
		rmdir "$cg" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
sysctl -q kernel.bpf_stats_enabled=1
mkdir "$CG_T" "$CG_A"

usage_ns() { cat "$1/cpuacct.usage"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$APID/status"; }
fds() { ls "/proc/$APID/fd" | wc -l; }
# bpf_ns: run_time_ns summed over the BPF programs the agent holds (from the fdinfo of its
# program fds: this bpftool does not list the programs' owners).
bpf_ns() {
	local s=0 f v
	for f in /proc/"$APID"/fdinfo/*; do
		v=$(awk '/^prog_id:/ { p = 1 } /^run_time_ns:/ { r = $2 } END { if (p) print r + 0 }' "$f" 2>/dev/null || true)
		[ -z "$v" ] || s=$((s + v))
	done
	echo "$s"
}
start_agent() { # DATA_DIR
	sh -c "echo \$\$ > $CG_A/cgroup.procs; exec $GOSCOPE agent --data-dir $1 --window 10s \
		--frequency 99 --retention 1h --rollup-after 5m" 2>"$TMP/agent.log" &
	APID=$!
	local n=0
	until grep -q 'profiling every Go process' "$TMP/agent.log" 2>/dev/null; do
		sleep 0.1
		n=$((n + 1))
		[ $n -lt 600 ] || { echo "agent did not start: $(cat "$TMP/agent.log")" >&2; exit 1; }
	done
}

echo "agent_overhead: $NBUSY busy (duty $DUTY), $NIDLE idle, $NCHURN restarting every 3 s; phase 1 ${SECONDS_TOTAL}s; phase 2 $PAIRS pairs of ${WIN}s windows"
echo "host: $(nproc) CPUs, $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"

# The workload, every process in the targets' cgroup (children inherit it).
echo $$ >"$CG_T/cgroup.procs"
for i in $(seq "$NBUSY"); do
	"$churn" -mode busy -duty "$DUTY" -duration 24h &
	pids+=($!)
done
for i in $(seq "$NIDLE"); do
	sleep 1d | "$idle" >/dev/null &
	pids+=($!)
done
for i in $(seq "$NCHURN"); do
	(while [ ! -e "$TMP/stop" ]; do "$churn" -mode short -duration 3s || true; done) &
	pids+=($!)
done
echo $$ >"$CG_ROOT/cgroup.procs"
sleep 2

# ---- phase 1 ----
start_agent "$TMP/data"
t_start=$(date +%s)
rss=() fd=()
u_t0= u_a0= b0= fd0=
while [ $(($(date +%s) - t_start)) -lt "$SECONDS_TOTAL" ]; do
	sleep 10
	el=$(($(date +%s) - t_start))
	r=$(rss_kb) f=$(fds)
	rss+=("$r") fd+=("$f")
	if [ -z "$u_t0" ] && [ "$el" -ge 60 ]; then
		u_t0=$(usage_ns "$CG_T") u_a0=$(usage_ns "$CG_A") b0=$(bpf_ns) fd0=$f
	fi
	echo "  t=${el}s agent_rss_kb=$r fds=$f targets_cpu_s=$(awk -v u="$(usage_ns "$CG_T")" 'BEGIN { printf "%.1f", u / 1e9 }') agent_cpu_s=$(awk -v u="$(usage_ns "$CG_A")" 'BEGIN { printf "%.2f", u / 1e9 }') bpf_s=$(awk -v u="$(bpf_ns)" 'BEGIN { printf "%.2f", u / 1e9 }')"
done
u_t1=$(usage_ns "$CG_T") u_a1=$(usage_ns "$CG_A") b1=$(bpf_ns)
n=${#rss[@]}
half=$((n / 2))
first=$(mean "${rss[@]:0:$half}")
last=$(mean "${rss[@]:$half}")
max=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
drift=$(awk -v a="$first" -v b="$last" 'BEGIN { d = (b - a) / a * 100; printf "%.2f\n", d < 0 ? -d : d }')
agent_pct=$(awk -v a="$((u_a1 - u_a0))" -v b="$((b1 - b0))" -v t="$((u_t1 - u_t0))" \
	'BEGIN { printf "%.4f\n", 100 * (a + b) / t }')
echo "phase 1: agent RSS mean first half $first kB, last half $last kB, max $max kB; fds after 60 s $fd0, at the end ${fd[-1]}"
echo "phase 1: after the first minute, targets used $(awk -v t="$((u_t1 - u_t0))" 'BEGIN { printf "%.1f", t / 1e9 }') CPU-s; the agent $(awk -v a="$((u_a1 - u_a0))" 'BEGIN { printf "%.2f", a / 1e9 }') CPU-s (user+sys, keeper included) + BPF $(awk -v b="$((b1 - b0))" 'BEGIN { printf "%.2f", b / 1e9 }') s"
grep -E 'stopped after|error' "$TMP/agent.log" | tail -5 || true
stats_line=$("$GOSCOPE" export --data-dir "$TMP/data" --list --from 0 | wc -l)
echo "phase 1: $((stats_line - 1)) rows in the store"
stop_agent
grep 'stopped after' "$TMP/agent.log" || true
result agent_rss_max_mib "$(awk -v k="$max" 'BEGIN { printf "%.1f\n", k / 1024 }')" "<=" 48
result agent_rss_drift_pct "$drift" "<=" 10
result agent_fd_growth "$((fd[-1] - fd0))" "<=" 2
result agent_cpu_pct "$agent_pct" "<=" 0.3

# ---- phase 2 ----
echo $$ >"$CG_T/cgroup.procs"
"$burn" -duration 24h -goroutines 2 -report 100ms >"$TMP/target.out" &
TPID=$!
echo $$ >"$CG_ROOT/cgroup.procs"
until grep -q '^tick' "$TMP/target.out" 2>/dev/null; do sleep 0.05; done
NCPU=$(nproc)
RATE=0
window() { # MODE
	local s0 s1 t0 t1 u0 u1 len
	if [ "$1" = with ]; then start_agent "$TMP/data2"; sleep 2; fi
	s0=$(steal_ms) t0=$(now_ns)
	sleep "$WIN"
	t1=$(now_ns) s1=$(steal_ms)
	if [ "$1" = with ]; then stop_agent; else sleep 0.3; fi
	u0=$(units_at "$t0" "$TMP/target.out")
	u1=$(units_at "$t1" "$TMP/target.out")
	len=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }')
	RATE=$(awk -v a="$u0" -v b="$u1" -v l="$len" -v n="$NCPU" -v st="$((s1 - s0))" \
		'BEGIN { printf "%.1f\n", (b - a) / (l * n - st / 1000) * n }')
	echo "  $1: len_s=$len units_per_unstolen_s=$RATE steal_ms=$((s1 - s0))"
}
ratios=() aa=() prev_mode= prev_rate=
for p in $(seq 1 "$PAIRS"); do
	if ((p % 2)); then order=(without with); else order=(with without); fi
	for m in "${order[@]}"; do
		window "$m"
		if [ "$m" = "$prev_mode" ]; then
			aa+=("$(awk -v a="$RATE" -v b="$prev_rate" 'BEGIN { printf "%.4f\n", a / b }')")
		fi
		prev_mode=$m prev_rate=$RATE
		if [ "$m" = with ]; then r_with=$RATE; else r_without=$RATE; fi
	done
	ratios+=("$(awk -v a="$r_with" -v b="$r_without" 'BEGIN { printf "%.4f\n", a / b }')")
	echo "  pair $p: with/without = ${ratios[-1]}"
done
echo "throughput ratios: ${ratios[*]}; median $(median "${ratios[@]}")"
echo "noise (adjacent windows of the same kind): ${aa[*]}; median |1 - ratio| $(median $(printf '%s\n' "${aa[@]}" | awk '{ d = $1 - 1; print (d < 0 ? -d : d) }'))"
result agent_throughput_ratio "$(median "${ratios[@]}")" ">=" 0.995
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
