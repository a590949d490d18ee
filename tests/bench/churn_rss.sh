#!/usr/bin/env bash
# churn_rss — does `goscope cpu --all-go` keep anything of processes that exited (run by
# tests/bench/run.sh)? Runs goscope --all-go for BENCH_CR_SECONDS (default 600) next to
# BENCH_CR_BUSY long-lived Go programs (default 20, each burning BENCH_CR_DUTY of a CPU) and
# BENCH_CR_CHURN restarting ones (default 20): each run of those is a fresh copy of the binary
# in a temp dir (a new file, as a redeployed service), lives 1 s and is deleted after it exits.
# goscope's RSS and mapping count are read every 10 s.
#   RESULT churn_rss_drift_pct = largest |RSS - RSS after 60 s| / RSS after 60 s, goal <= 10
#   RESULT churn_maps_growth  = mappings at the end - mappings after 60 s (informational goal <= 10)
# BENCH_CR_GOSCOPE picks the goscope binary (default build/goscope), e.g. a build of main at the
# branch point for before/after figures. The make-test version is
# tests/integration/test_cpu_hardening.c (cpu_hardening/churn_rss, 60 s).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPO=${GOSCOPE_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
cd "$REPO"
SECONDS_TOTAL=${BENCH_CR_SECONDS:-600}
NBUSY=${BENCH_CR_BUSY:-20}
NCHURN=${BENCH_CR_CHURN:-20}
DUTY=${BENCH_CR_DUTY:-0.02}
GOSCOPE=${BENCH_CR_GOSCOPE:-$REPO/build/goscope}
churn=$(tests/gobuild.sh churn 1.27 default)
tmp=$(mktemp -d /tmp/churn_rss.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

for i in $(seq "$NBUSY"); do
	"$churn" -mode busy -duty "$DUTY" -duration $((SECONDS_TOTAL + 30))s &
	pids+=($!)
done
for i in $(seq "$NCHURN"); do
	(
		n=0
		while [ ! -e "$tmp/stop" ]; do
			n=$((n + 1))
			cp "$churn" "$tmp/churn-$i-$n"
			"$tmp/churn-$i-$n" -mode short -duration 1s -burn 20ms || true
			rm -f "$tmp/churn-$i-$n"
		done
	) &
	pids+=($!)
done
sleep 1
"$GOSCOPE" cpu --all-go --duration "${SECONDS_TOTAL}s" -o "$tmp/cpu.pb.gz" 2>"$tmp/goscope.err" &
gs=$!
base_rss="" base_maps="" drift=0 last_maps=0 t=0
while kill -0 "$gs" 2>/dev/null; do
	sleep 10
	t=$((t + 10))
	rss=$(awk '/^VmRSS/ {print $2}' "/proc/$gs/status" 2>/dev/null) || break
	maps=$(wc -l <"/proc/$gs/maps" 2>/dev/null) || break
	[ -n "$rss" ] || break
	echo "t=${t}s rss_kb=$rss maps=$maps"
	if [ "$t" -eq 60 ]; then base_rss=$rss base_maps=$maps; fi
	if [ -n "$base_rss" ]; then
		d=$(awk -v r="$rss" -v b="$base_rss" 'BEGIN { d = (r - b) / b * 100; if (d < 0) d = -d; printf "%.1f", d }')
		drift=$(awk -v a="$drift" -v b="$d" 'BEGIN { print (b > a ? b : a) }')
	fi
	last_maps=$maps
done
touch "$tmp/stop"
wait "$gs" || true
cat "$tmp/goscope.err"
if [ -z "$base_rss" ]; then
	echo "goscope ended before 60 s"
	exit 1
fi
result churn_rss_drift_pct "$drift" "<=" 10
result churn_maps_growth "$((last_maps - base_maps))" "<=" 10
