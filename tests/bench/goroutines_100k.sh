#!/usr/bin/env bash
# goroutines_100k.sh — `goscope goroutines` on a process with 100,000 goroutines (tests/go/gbusy:
# 100,000 parked, plus one channel ping-pong pair whose round trips measure the target's
# throughput): dump time (without and with --stop), goscope's peak RSS, and the target's
# throughput while it is read without --stop, against the same target left alone, side by side
# in one run. Goals: dump < 1 s, RSS < 64 MiB, throughput ratio reported.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
repo=${GOSCOPE_REPO:-$(cd "$here/../.." && pwd -P)}
goscope=${GOSCOPE_BIN:-$repo/build/goscope}
bin=$("$repo/tests/gobuild.sh" gbusy "${BENCH_GO:-1.27}" default)
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; exec 9>&-; rm -rf "$tmp"' EXIT
mkfifo "$tmp/in"
"$bin" -parked 100000 -pairs 1 <"$tmp/in" >"$tmp/out" &
pid=$!
exec 9>"$tmp/in"
for _ in $(seq 1 600); do grep -q ready "$tmp/out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$tmp/out" || { echo "gbusy did not start"; exit 1; }

count() { # round trips so far
	local before
	before=$(wc -l <"$tmp/out")
	echo count >&9
	for _ in $(seq 1 100); do [ "$(wc -l <"$tmp/out")" -gt "$before" ] && break; sleep 0.01; done
	tail -1 "$tmp/out"
}
rate() { # round trips per second over $1 seconds, while $2 runs (or nothing)
	local a b t0 t1
	a=$(count); t0=$(date +%s.%N)
	if [ -n "${2:-}" ]; then
		local end=$(( $(date +%s) + $1 ))
		while [ "$(date +%s)" -lt "$end" ]; do $2 >/dev/null 2>&1; done
	else
		sleep "$1"
	fi
	b=$(count); t1=$(date +%s.%N)
	awk -v a="$a" -v b="$b" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f\n", (b - a) / (t1 - t0) }'
}
dump() { "$goscope" goroutines --pid "$pid" -o /dev/null; }

times=() stimes=() rss=()
for _ in 1 2 3 4 5; do
	out=$(/usr/bin/time -f "%e %M" "$goscope" goroutines --pid "$pid" -o /dev/null 2>&1 | tail -1)
	times+=("${out% *}") rss+=("${out#* }")
	out=$(/usr/bin/time -f "%e %M" "$goscope" goroutines --pid "$pid" --stop -o /dev/null 2>&1 | tail -1)
	stimes+=("${out% *}")
done
"$goscope" goroutines --pid "$pid" -o /dev/null 2>&1 | head -1
base1=$(rate 3)
during=$(rate 3 dump)
base2=$(rate 3)
base=$(awk -v a="$base1" -v b="$base2" 'BEGIN { printf "%.0f\n", (a + b) / 2 }')
ratio=$(awk -v d="$during" -v b="$base" 'BEGIN { printf "%.3f\n", b ? d / b : 0 }')
echo "dump seconds (no --stop): ${times[*]}"
echo "dump seconds (--stop):    ${stimes[*]}"
echo "peak RSS KiB:             ${rss[*]}"
echo "target round trips/s: alone $base1 / $base2, while dumped back to back $during"
result goroutines_100k_dump_s "$(median "${times[@]}")" "<=" 1
result goroutines_100k_dump_stop_s "$(median "${stimes[@]}")" "<=" 1
result goroutines_100k_rss_mib "$(awk -v k="$(median "${rss[@]}")" 'BEGIN { printf "%.1f\n", k / 1024 }')" "<=" 64
result goroutines_100k_throughput_ratio "$ratio" ">=" 0.5
