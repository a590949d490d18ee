#!/usr/bin/env bash
# agent_discovery — what each way of finding new processes costs and misses (issue 12,
# "Discovery"; run by tests/bench/run.sh). tests/bench/discover_bench.c runs three discoverers
# (agent/daemon/discover.c) side by side on one exec storm: the BPF exec watcher (with the
# agent's default 30 s rescan), waking its reader at every exec (exec-wake) or batched (the
# default, exec-batch), and /proc rescans alone every 1 s and every 5 s; each polls every 100 ms. The storm is
# BENCH_DISC_RATE short-lived processes per second (/bin/true, default 200) and 4 long-lived
# ones per second (/bin/sleep) for BENCH_DISC_SECONDS (default 20). Printed per discoverer:
# discovery's CPU time per second (its own, the whole thread's, the BPF program's), the latency
# from a long-lived process's fork to its report (p50/p99/max), long-lived processes never
# reported, short-lived ones seen and missed, ring drops.
#   RESULT discovery_<mode>_latency_max_ms goal <= 2000 (every long-lived process reported)
#   RESULT discovery_<mode>_cpu_ms_per_s, discovery_<mode>_short_missed_pct (informational)
set -euo pipefail

REPO=${GOSCOPE_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
cd "$REPO"
SECS=${BENCH_DISC_SECONDS:-20}
RATE=${BENCH_DISC_RATE:-200}
OUT=$(mktemp -d /tmp/agent_discovery.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

make -s build/obj/agent/daemon/discover.o build/obj/agent/capture/core.o \
	build/obj/agent/procs/proc.o build/libgoscope-symbolizer.a
gcc -O2 -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE -Iinclude -I. -Iagent -Ibuild \
	tests/bench/discover_bench.c build/obj/agent/daemon/discover.o \
	build/obj/agent/capture/core.o build/obj/agent/procs/proc.o \
	build/libgoscope-symbolizer.a -o "$OUT/discover_bench" -lbpf -lelf -lz -lpthread
echo "host processes: $(ls -d /proc/[0-9]* | wc -l); pid_max $(cat /proc/sys/kernel/pid_max)"
"$OUT/discover_bench" "$SECS" "$RATE"
