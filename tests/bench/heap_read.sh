#!/usr/bin/env bash
# heap_read.sh — `goscope heap` on a process with 10,000 memory-profile buckets
# (tests/go/heapalloc -mode bench: 10,000 distinct (stack, size) allocations sampled at
# MemProfileRate 1, then a busy loop that reports its iterations every 50 ms): the read's
# time and goscope's peak RSS (5 runs), and the target's throughput while goscope reads it
# back to back, in rotating 2 s periods of one run: alone, beside a shell loop burning the
# other CPU (the control), and while goscope reads it. The target runs on CPU 1, goscope and
# the loop on CPU 0: on this VM the two vCPUs share a physical core, so anything busy on
# CPU 0 slows the target; the control measures that, and the ratio read / control is what
# reading the target's memory costs it (process_vm_readv never stops it). Both ratios are
# printed. The noise floor is the control's own spread (odd against even periods).
# Goals: read < 1 s, RSS < 64 MiB, throughput ratio (read / control) >= 0.999.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
repo=${GOSCOPE_REPO:-$(cd "$here/../.." && pwd -P)}
goscope=${GOSCOPE_BIN:-$repo/build/goscope}
bin=$("$repo/tests/gobuild.sh" heapalloc "${BENCH_GO:-1.27}" stripped)
periods=${HEAP_BENCH_PERIODS:-6}
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; exec 9>&-; rm -rf "$tmp"' EXIT
mkfifo "$tmp/in"
taskset -c 1 "$bin" -mode bench -buckets 10000 -tick 50ms <"$tmp/in" >"$tmp/out" &
pid=$!
exec 9>"$tmp/in"
for _ in $(seq 1 600); do grep -q ready "$tmp/out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$tmp/out" || { echo "heapalloc did not start"; exit 1; }
read_heap() { taskset -c 0 "$goscope" heap --pid "$pid" -o "$tmp/heap.pb.gz"; }

times=() rss=()
for _ in 1 2 3 4 5; do
	out=$(/usr/bin/time -f "%e %M" taskset -c 0 "$goscope" heap --pid "$pid" -o "$tmp/heap.pb.gz" 2>&1 | tail -1)
	times+=("${out% *}") rss+=("${out#* }")
done
read_heap 2>&1 | head -1

# units per second of the target over [t0, t1] (ns), from its tick lines
rate() {
	local a b
	sleep 0.2 # a tick after t1
	a=$(units_at "$1" "$tmp/out"); b=$(units_at "$2" "$tmp/out")
	awk -v a="$a" -v b="$b" -v t0="$1" -v t1="$2" 'BEGIN { printf "%.1f\n", (b - a) / ((t1 - t0) / 1e9) }'
}
alone=() burn=() during=() reads=0
for i in $(seq 1 "$periods"); do
	t0=$(now_ns); sleep 2; t1=$(now_ns)
	alone+=("$(rate "$t0" "$t1")")
	t0=$(now_ns)
	taskset -c 0 timeout 2 sh -c 'while :; do :; done' || true
	t1=$(now_ns)
	burn+=("$(rate "$t0" "$t1")")
	t0=$(now_ns); end=$((t0 + 2000000000))
	while [ "$(now_ns)" -lt "$end" ]; do read_heap >/dev/null 2>&1; reads=$((reads + 1)); done
	t1=$(now_ns)
	during+=("$(rate "$t0" "$t1")")
done
odd=() even=()
for i in "${!burn[@]}"; do
	if [ $((i % 2)) -eq 0 ]; then even+=("${burn[$i]}"); else odd+=("${burn[$i]}"); fi
done
ratio=$(awk -v d="$(mean "${during[@]}")" -v b="$(mean "${burn[@]}")" 'BEGIN { printf "%.4f\n", b ? d / b : 0 }')
ratio_alone=$(awk -v d="$(mean "${during[@]}")" -v b="$(mean "${alone[@]}")" 'BEGIN { printf "%.4f\n", b ? d / b : 0 }')
noise=$(awk -v o="$(mean "${odd[@]}")" -v e="$(mean "${even[@]}")" 'BEGIN { r = e ? o / e : 0; d = r > 1 ? r - 1 : 1 - r; printf "%.4f\n", d }')
echo "read seconds:   ${times[*]}"
echo "peak RSS KiB:   ${rss[*]}"
echo "target units/s alone:             ${alone[*]}"
echo "target units/s beside a CPU loop:  ${burn[*]}"
echo "target units/s while read:         ${during[*]} ($reads reads)"
echo "throughput ratio while read / beside a CPU loop: $ratio (noise floor of the control, odd / even periods: ±$noise)"
echo "throughput ratio while read / alone: $ratio_alone (the other vCPU busy at all)"
result heap_read_seconds "$(median "${times[@]}")" "<=" 1
result heap_read_peak_rss_kib "$(median "${rss[@]}")" "<=" 65536
result heap_read_throughput_ratio "$ratio" ">=" 0.999
