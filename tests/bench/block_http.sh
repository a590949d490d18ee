#!/usr/bin/env bash
# block_http — what `goscope block` costs a net/http server under load (run by
# tests/bench/run.sh).
#
# tests/go/httpload (Go 1.27): one server process, and a Go load generator (8 clients,
# keep-alive) run for BENCH_HTTP_SECONDS (default 4) at a time, alternating, R rounds
# (BENCH_HTTP_ROUNDS, default 2) of:
#   none     no capture
#   default  goscope block at the default budget (--max-overhead 2)
#   full     goscope block --max-overhead 100 (unthrottled)
# The capture covers the whole load run. Throughput ratio = rps(X) / rps(none), means.
#   RESULT http_ratio_default  goal >= 0.97
#   RESULT http_ratio_unthrottled (reported, no goal)
set -euo pipefail

REPO=${GOSCOPE_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
cd "$REPO"
SECS=${BENCH_HTTP_SECONDS:-4}
ROUNDS=${BENCH_HTTP_ROUNDS:-2}
GOSCOPE=$REPO/build/goscope
[ -x "$GOSCOPE" ] || { echo "build/goscope missing: run make all" >&2; exit 1; }
BIN=$(bash tests/gobuild.sh httpload 1.27 default)

coproc SRV { exec "$BIN" -serve; }
read -r _ SPID ADDR <&"${SRV[0]}"
trap 'kill "$SPID" 2>/dev/null || true' EXIT
"$BIN" -load "$ADDR" -duration 1s >/dev/null # warm-up

run() { # MODE -> rps
	local mode=$1 gs= line
	case $mode in
	default) "$GOSCOPE" block --pid "$SPID" --duration 0 -o /dev/null 2>/dev/null & gs=$! ;;
	full) "$GOSCOPE" block --pid "$SPID" --duration 0 --max-overhead 100 -o /dev/null \
		2>/dev/null & gs=$! ;;
	esac
	[ -n "$gs" ] && sleep 0.5 # attached (and calibrated) before the load starts
	line=$("$BIN" -load "$ADDR" -duration "${SECS}s")
	[ -n "$gs" ] && { kill -INT "$gs"; wait "$gs" || true; }
	echo "${line#rps }"
}

declare -A sum=([none]=0 [default]=0 [full]=0)
for r in $(seq "$ROUNDS"); do
	for m in none default full; do
		v=$(run $m)
		echo "round $r $m: $v requests/s"
		sum[$m]=$(awk -v a="${sum[$m]}" -v b="$v" 'BEGIN{print a+b}')
	done
done
awk -v n="${sum[none]}" -v d="${sum[default]}" -v f="${sum[full]}" -v r="$ROUNDS" 'BEGIN {
	printf "mean requests/s: none %.0f, default budget %.0f, unthrottled %.0f\n", n/r, d/r, f/r
	rd = d / n; rf = f / n
	printf "RESULT http_ratio_default=%.3f goal=>=0.97 (%s)\n", rd, (rd >= 0.97 ? "ok" : "MISSED")
	printf "RESULT http_ratio_unthrottled=%.3f goal=none (reported)\n", rf
}'
