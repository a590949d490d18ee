#!/usr/bin/env bash
# agent_storage.sh — bytes per process-hour (and day) of the agent's store: the gzipped 10 s
# windows as stored raw, vs. after rollup into minutes (each a whole pprof), vs. rollup with
# the per-process dictionary (what the store keeps). Goal (issue 12): rollup + dedup <= 10 %
# of the gzipped windows they came from.
#
# Real windows: `goscope cpu` captures BENCH_STORAGE_WINDOWS (default 12) windows of a real
# Go service under load (tests/go/httpload: a net/http server and its load generator), each
# 2 s at 495 Hz — the sample count of a 10 s window at the agent's 99 Hz. The driver
# (tests/bench/store_bench.c) then feeds 360 of them (one process-hour of 10 s windows, the
# captured ones in turn) into a fresh store with timestamps over the hour and rolls it up.
# Using the captured windows in turn repeats stacks a real hour would also repeat; a
# service whose stack set keeps growing would make the dictionary larger (its chunks are
# printed separately).
set -euo pipefail
REPO=${GOSCOPE_REPO:-$(cd "$(dirname "$0")/../.." && pwd -P)}
cd "$REPO"
. tests/bench/lib.sh
OUT=$REPO/build/bench
mkdir -p "$OUT"
NWIN=${BENCH_STORAGE_WINDOWS:-12}
GOSCOPE=$REPO/build/goscope
TMP=$(mktemp -d /tmp/goscope-bench-storage.XXXXXX)
[ -x "$GOSCOPE" ] || { echo "build/goscope missing: run make all" >&2; exit 1; }

SRV= LOAD=
cleanup() {
	[ -z "$SRV" ] || kill "$SRV" 2>/dev/null || true
	[ -z "$LOAD" ] || kill "$LOAD" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

gcc -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -I. -Iagent \
	-o "$OUT/store_bench" tests/bench/store_bench.c \
	$(ls build/obj/agent/*/*.o | grep -v cli/main.o) build/libgoscope-symbolizer.a \
	-lbpf -lelf -lz -lsqlite3 -lcjson -lpthread
BIN=$(bash tests/gobuild.sh httpload 1.27 default)

"$BIN" -serve >"$TMP/serve.out" 2>&1 &
SRV=$!
for _ in $(seq 100); do grep -q '^ready' "$TMP/serve.out" && break; sleep 0.1; done
ADDR=$(awk '/^ready/ {print $3}' "$TMP/serve.out")
[ -n "$ADDR" ] || { echo "httpload -serve did not start" >&2; exit 1; }
"$BIN" -load "$ADDR" -c 8 -duration 600s >"$TMP/load.out" 2>&1 &
LOAD=$!
sleep 1

files=()
for i in $(seq "$NWIN"); do
	"$GOSCOPE" cpu --pid "$SRV" --duration 2s --frequency 495 -o "$TMP/w$i.pb.gz" >/dev/null 2>&1
	files+=("$TMP/w$i.pb.gz")
done
echo "captured $NWIN windows of httpload -serve (pid $SRV): $(du -cb "${files[@]}" | tail -1 | cut -f1) bytes"

out=$("$OUT/store_bench" "$TMP/store" 360 "${files[@]}")
echo "$out"
raw=$(field raw_bytes $out)
dict=$(field bytes_per_process_hour_rollup_dict $out)
echo "per process-day: raw $((raw * 24)) bytes, rollup+dictionary $((dict * 24)) bytes"
result storage_ratio_rollup_only "$(field ratio_rollup_only $out)" "<=" 1
result storage_ratio_rollup_dict "$(field ratio_rollup_dict $out)" "<=" 0.10
