#!/usr/bin/env bash
# labels_overhead — what reading pprof labels in BPF costs per CPU sample (run by
# tests/bench/run.sh).
#
# Target: tests/go/labels with 2 worker goroutines (both cores busy), every one of them under
# pprof.Do labels all the time (1 to 11 labels per set, one set with a key and value longer
# than goscope keeps); built with Go 1.27 (label sets are slices) and Go 1.23 (maps). For
# each, with the work at the top of the stack (-depth 0: about 8 frames) and 40 frames deeper
# (-depth 40: the stack depth of a real service's handlers), captures alternate between
#   labels:    `goscope cpu --pid PID --frequency F`
#   no labels: the same with --no-labels: the same build and BPF object, with the rodata flag
#              read_labels false, so the verifier removes the label code at load (dead code:
#              it is not in the program that runs), the sample record unchanged.
# BPF run time per sample = run_time_ns / run_cnt of the capture's perf_event program, read
# from goscope's own program fd (/proc/PID/fdinfo, prog_type 7) near the end of each capture,
# with the sysctl kernel.bpf_stats_enabled set to 1 during this benchmark (restored after).
# run_cnt counts every sample of the CPUs, the target's and other processes' (filtered out
# first, cheap): those are taken out at the cost of a run measured on an idle process's
# capture (every run then is one), so the figure is BPF ns per sample of the target:
#   (run_time_ns - (run_cnt - target samples) x other) / target samples.
#
#   ratio = median(ns per target sample, labels) / median(ns per sample, no labels), per Go
#     version and depth. Goal: <= 1.2.
#
# What the ratio is made of: BPF's cost per sample is mostly its reads of the target's memory
# (bpf_probe_read_user, a few hundred ns each on this VM): the frame-pointer walk reads one
# frame per stack frame, the labels add 3 reads for a label set read before (g.labels, the
# set's header, its list of string addresses; 4 for a map) and 2 per label for a new one.
# So the ratio depends on the stack depth, which the two depths show.
#
# Environment: BENCH_LABELS_REPS (captures of each kind per version, default 5),
# BENCH_LABELS_SECONDS (per capture, default 4), BENCH_LABELS_FREQUENCY (default 999),
# BENCH_LABELS_CONFIGS (GO_VERSION/DEPTH list, default "1.27/0 1.23/0 1.27/40 1.23/40").
set -euo pipefail

REPO=${GOSCOPE_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
cd "$REPO"
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh
REPS=${BENCH_LABELS_REPS:-5}
SECONDS_PER=${BENCH_LABELS_SECONDS:-4}
FREQ=${BENCH_LABELS_FREQUENCY:-999}
GOSCOPE=$REPO/build/goscope
TMP=$(mktemp -d /tmp/goscope-bench-labels.XXXXXX)
PERF_EVENT_PROG_TYPE=7

[ -x "$GOSCOPE" ] || { echo "build/goscope missing: run make all" >&2; exit 1; }

old_stats=$(sysctl -n kernel.bpf_stats_enabled)
TPID=
cleanup() {
	[ -z "$TPID" ] || kill "$TPID" 2>/dev/null || true
	sysctl -q kernel.bpf_stats_enabled="$old_stats" || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap "exit 130" INT TERM
sysctl -q kernel.bpf_stats_enabled=1

# prog_stats PID: "run_time_ns run_cnt" of the perf_event program PID holds.
prog_stats() {
	local f
	for f in /proc/"$1"/fdinfo/*; do
		awk -v t="$PERF_EVENT_PROG_TYPE" '
			$1 == "prog_type:" { pt = $2 } $1 == "run_time_ns:" { rt = $2 }
			$1 == "run_cnt:" { rc = $2 }
			END { if (pt == t && rc > 0) print rt, rc }' "$f" 2>/dev/null
	done | head -1
}

# capture PID FLAG...: one capture of PID; prints "run_time_ns run_cnt target_samples".
capture() {
	local gs stats samples pid=$1
	shift
	# Ended by SIGINT right after its program's counters are read: its sample count then
	# covers the same time.
	"$GOSCOPE" cpu --pid "$pid" --duration 0 --frequency "$FREQ" \
		-o "$TMP/p.pb.gz" "$@" 2>"$TMP/err" &
	gs=$!
	sleep "$SECONDS_PER"
	stats=$(prog_stats "$gs")
	kill -INT "$gs"
	wait "$gs" || true
	samples=$(awk '/samples from/ {print $3; exit}' "$TMP/err")
	echo "$stats ${samples:-0}"
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
# The cost of a run on another process's sample (the target filter), from a capture of an
# idle process: every run of it is such a run.
sleep 600 &
IDLE=$!
read -r rt rc _ < <(capture "$IDLE")
kill "$IDLE" 2>/dev/null || true
OTHER_NS=$(awk -v rt="$rt" -v rc="$rc" 'BEGIN { printf "%.1f\n", rc ? rt / rc : 0 }')
echo "a run on a sample of another process: $OTHER_NS ns ($rc runs)"
# per_sample RT RC S: ns per target sample, the other processes' runs taken out.
per_sample() {
	awk -v rt="$1" -v rc="$2" -v s="$3" -v o="$OTHER_NS" \
		'BEGIN { if (s > 0) printf "%.1f %.3f\n", (rt - (rc - s) * o) / s, s / rc; else print "nan 0" }'
}
for cfg in ${BENCH_LABELS_CONFIGS:-1.27/0 1.23/0 1.27/40 1.23/40}; do
	v=${cfg%/*} depth=${cfg#*/}
	TARGET=$(bash tests/gobuild.sh labels "$v" default)
	"$TARGET" -workers 2 -depth "$depth" -duration "$((2 * REPS * (SECONDS_PER + 2) + 10))s" >"$TMP/out" &
	TPID=$!
	sleep 0.5
	on=() off=()
	for ((r = 0; r < REPS; r++)); do
		# Alternate which kind goes first, so a drift favours neither.
		for kind in $([ $((r % 2)) -eq 0 ] && echo "on off" || echo "off on"); do
			if [ "$kind" = on ]; then
				read -r rt rc s < <(capture "$TPID")
				read -r ns share < <(per_sample "$rt" "$rc" "$s")
				on+=("$ns")
			else
				read -r rt rc s < <(capture "$TPID" --no-labels)
				read -r ns share < <(per_sample "$rt" "$rc" "$s")
				off+=("$ns")
			fi
			echo "go$v depth $depth rep $r labels=$kind: $ns ns per target sample (target's share of the runs $share)"
		done
	done
	kill "$TPID" 2>/dev/null || true
	wait "$TPID" 2>/dev/null || true
	TPID=
	mon=$(median "${on[@]}")
	moff=$(median "${off[@]}")
	ratio=$(awk -v a="$mon" -v b="$moff" 'BEGIN { printf "%.3f\n", a / b }')
	echo "go$v depth $depth: median $mon ns per sample with labels, $moff without"
	result "labels_bpf_ratio_go${v}_depth$depth" "$ratio" "<=" 1.2
done
