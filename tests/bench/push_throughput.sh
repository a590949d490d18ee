#!/usr/bin/env bash
# push_throughput — what pushing to Pyroscope costs the agent and how fast it delivers (run by
# tests/bench/run.sh). The remote is tests/go/pyrostand, the loopback stand-in for Pyroscope's
# push endpoint the push tests use (it decodes every request and profile, as Pyroscope would).
#
# Workload: 50 Go processes (BENCH_PT_BUSY, default 20, burning BENCH_PT_DUTY = 0.05 of a CPU
# each with tests/go/churn -mode busy; the rest idle, tests/go/idle), the agent at 99 Hz.
#
# Phase 1 (delivery rate): windows of 1 s (50 windows a second), the remote answers 503 for
# BENCH_PT_OUTAGE seconds (default 60) so that a backlog builds, then accepts; the time the
# agent takes to drain it gives
#   RESULT push_windows_per_sec       windows delivered per second while draining, goal >= 200
# and the agent's CPU (user + sys of the process, every thread) during the drain minus what the
# same agent used per second before the backlog (production, not push):
#   RESULT push_cpu_ms_per_window     agent CPU per delivered window, goal <= 2
#
# Phase 2 (steady state, side by side): BENCH_PT_PAIRS pairs (default 4) of runs of
# BENCH_PT_RUN seconds (default 60) with the default 10 s windows, the agent with --push-url and
# without, the order alternating; the agent's CPU per second of each run:
#   RESULT push_cpu_ratio             median (push on / push off), goal <= 1.10
# and the noise floor: the ratio of the two runs of the same kind in adjacent pairs.
set -euo pipefail

REPO=${GOSCOPE_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
cd "$REPO"
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh
NPROC=50
NBUSY=${BENCH_PT_BUSY:-20}
DUTY=${BENCH_PT_DUTY:-0.05}
OUTAGE=${BENCH_PT_OUTAGE:-60}
PAIRS=${BENCH_PT_PAIRS:-4}
RUN=${BENCH_PT_RUN:-60}
GOSCOPE=${BENCH_PT_GOSCOPE:-$REPO/build/goscope}
[ -x "$GOSCOPE" ] || { echo "build/goscope missing: run make all" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "needs the sqlite3 CLI" >&2; exit 1; }
churn=$(bash tests/gobuild.sh churn 1.27 default)
idle=$(bash tests/gobuild.sh idle 1.24 stripped)
stand=$(bash tests/gobuild.sh pyrostand 1.27 default)
TMP=$(mktemp -d /tmp/goscope-bench-push.XXXXXX)
APID= SPID=
pids=()

stop_agent() {
	[ -z "$APID" ] || { kill "$APID" 2>/dev/null || true; wait "$APID" 2>/dev/null || true; }
	APID=
}
cleanup() {
	stop_agent
	exec 3>&- 4>&- 2>/dev/null || true
	[ -z "$SPID" ] || kill "$SPID" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The agent's CPU (user + sys, all threads) in ms.
agent_cpu_ms() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.0f\n", ($12 + $13) * 1000 / hz }' \
		"/proc/$APID/stat"
}
backlog() { sqlite3 -readonly "$1/goscope.db" "SELECT count(*) FROM profiles WHERE push_state = 0" 2>/dev/null || echo 0; }
delivered() { grep -c '"kind":"window"' "$TMP/received.jsonl" 2>/dev/null || true; }
stand_cmd() { echo "$1" >&3; sleep 0.2; }
start_agent() { # DATA_DIR WINDOW EXTRA...
	local dir=$1 win=$2
	shift 2
	"$GOSCOPE" agent --data-dir "$dir" --window "$win" --frequency 99 --listen off \
		--retention 1h --rollup-after 0 "$@" 2>"$TMP/agent.log" &
	APID=$!
	local n=0
	until grep -q 'profiling every Go process' "$TMP/agent.log" 2>/dev/null; do
		sleep 0.1
		n=$((n + 1))
		[ $n -lt 600 ] || { echo "agent did not start: $(cat "$TMP/agent.log")" >&2; exit 1; }
	done
}

echo "push_throughput: $NPROC processes ($NBUSY busy at duty $DUTY), 99 Hz; outage ${OUTAGE}s; $PAIRS pairs of ${RUN}s"
echo "host: $(nproc) CPUs, $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"

mkfifo "$TMP/stand.in"
"$stand" -out "$TMP/received.jsonl" <"$TMP/stand.in" >"$TMP/stand.out" &
SPID=$!
exec 3>"$TMP/stand.in"
until grep -q listening "$TMP/stand.out" 2>/dev/null; do sleep 0.1; done
URL=http://$(awk '/listening/ {print $2}' "$TMP/stand.out")

for i in $(seq "$NBUSY"); do
	"$churn" -mode busy -duty "$DUTY" -duration 24h &
	pids+=($!)
done
# The idle programs wait on a FIFO this script holds open (no helper process to reap).
mkfifo "$TMP/idle.in"
exec 4<>"$TMP/idle.in"
for i in $(seq $((NPROC - NBUSY))); do
	"$idle" <"$TMP/idle.in" >/dev/null &
	pids+=($!)
done
sleep 2

# ---- phase 1: a backlog drained ----
start_agent "$TMP/d1" 1s --push-url "$URL" --push-max-backoff 2s
sleep 10
c0=$(agent_cpu_ms)
sleep 20
c1=$(agent_cpu_ms)
base_ms_per_s=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", (b - a) / 20 }')
stand_cmd "fail 503"
sleep "$OUTAGE"
b0=$(backlog "$TMP/d1")
d0=$(delivered)
stand_cmd "ok"
t0=$(now_ns) c0=$(agent_cpu_ms)
# Drained when the backlog is back to what steady state leaves (a window or two per process).
while [ "$(backlog "$TMP/d1")" -gt $((NPROC * 2)) ]; do
	sleep 0.2
	[ $(($(now_ns) - t0)) -lt 300000000000 ] || { echo "backlog not drained in 5 minutes" >&2; break; }
done
t1=$(now_ns) c1=$(agent_cpu_ms)
d1=$(delivered)
stop_agent
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
n=$((d1 - d0))
rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
per=$(awk -v c="$((c1 - c0))" -v base="$base_ms_per_s" -v s="$secs" -v n="$n" \
	'BEGIN { x = c - base * s; if (x < 0) x = 0; printf "%.3f", (n ? x / n : 0) }')
echo "  backlog $b0 windows after ${OUTAGE}s; drained $n windows in ${secs}s; agent CPU $((c1 - c0)) ms (baseline $base_ms_per_s ms/s)"
result push_windows_per_sec "$rate" ">=" 200
result push_cpu_ms_per_window "$per" "<=" 2

# ---- phase 2: push on / off, side by side ----
on=() off=()
for p in $(seq "$PAIRS"); do
	for kind in $([ $((p % 2)) -eq 1 ] && echo "on off" || echo "off on"); do
		rm -rf "$TMP/d2"
		if [ "$kind" = on ]; then
			start_agent "$TMP/d2" 10s --push-url "$URL"
		else
			start_agent "$TMP/d2" 10s
		fi
		sleep 10 # its start-up is not the steady state
		c0=$(agent_cpu_ms)
		sleep "$RUN"
		c1=$(agent_cpu_ms)
		stop_agent
		v=$(awk -v a="$c0" -v b="$c1" -v s="$RUN" 'BEGIN { printf "%.3f", (b - a) / s }')
		echo "  pair $p push $kind: agent ${v} ms CPU per second"
		if [ "$kind" = on ]; then on+=("$v"); else off+=("$v"); fi
	done
done
ratios=() noise=()
for i in $(seq 0 $((PAIRS - 1))); do
	ratios+=("$(awk -v a="${on[$i]}" -v b="${off[$i]}" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')")
	if [ "$i" -gt 0 ]; then
		noise+=("$(awk -v a="${off[$i]}" -v b="${off[$((i - 1))]}" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')")
	fi
done
echo "  ratios on/off: ${ratios[*]}; noise floor (off/off of adjacent pairs): ${noise[*]}"
result push_cpu_ratio "$(median "${ratios[@]}")" "<=" 1.10
echo "  noise_floor_median=$(median "${noise[@]}")"
