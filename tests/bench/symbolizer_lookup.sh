#!/usr/bin/env bash
# symbolizer_lookup — goscope's symbolizer vs Go's debug/gosym (run by tests/bench/run.sh).
#
# 1. Lookups per second over the SAME random PCs (a file written by symbolizer_bench gen,
#    fixed seed, uniform in the text range): goscope's gs_binary_symbolize with full inline
#    expansion and with GS_LOOKUP_NO_INLINE (tests/bench/symbolizer_bench.c) vs a Go program
#    built with the target's own toolchain doing debug/gosym PCToLine + PCToFunc
#    (tests/bench/go/gosymbench). Targets: the `compile` binaries of Go 1.27 and 1.19.
#    Goal: goscope >= 10x debug/gosym, per binary, for the same answer: debug/gosym gives the
#    outermost function, file and line of a PC, which is goscope's GS_LOOKUP_NO_INLINE lookup
#    (the cross-check below proves the answers are identical). goscope's full lookup also
#    expands inlined frames (more table walks, more names), which debug/gosym cannot do: its
#    ratio is printed as a RESULT without a goal. Also printed, without a goal: the same with
#    PCs spread per function (a random function, then a random offset in it), and the first
#    pass over the PCs on a freshly opened binary (before the skip index is built).
# 2. Time and peak RSS to open the largest Go binary installed and answer one lookup: goscope
#    vs the debug/gosym program vs `go tool addr2line` (5 runs, median, warm page cache).
#    Goal: goscope answers in milliseconds (<= 10 ms) with a peak RSS <= 10 % of the file
#    size (it must not read the whole file).
#
# Rounds are short and many, the order alternating from round to round, and the RESULT is the
# median of the per-round ratios: on this VM the host's noise moves the absolute rates by 2x
# within seconds, and only measurements close in time are comparable.
#
# Environment: BENCH_LOOKUP_PCS (default 20000), BENCH_LOOKUP_SECONDS (per measurement,
# default 0.4), BENCH_LOOKUP_ROUNDS (default 11), BENCH_FIRST_RUNS (default 5).
set -euo pipefail

REPO=${GOSCOPE_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
cd "$REPO"
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh
OUT=$REPO/build/bench
mkdir -p "$OUT"
NPCS=${BENCH_LOOKUP_PCS:-20000}
SECS=${BENCH_LOOKUP_SECONDS:-0.4}
ROUNDS=${BENCH_LOOKUP_ROUNDS:-11}
FIRST_RUNS=${BENCH_FIRST_RUNS:-5}
TMP=$(mktemp -d /tmp/goscope-bench-sym.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOPROXY=off GO111MODULE=on GOENV=off GOWORK=off
export GOCACHE=$REPO/build/gocache GOPATH=$REPO/build/gopath
unset GOROOT GOOS GOARCH GOEXPERIMENT CGO_ENABLED 2>/dev/null || true

# ---- build (untimed) ----
[ -f build/libgoscope-symbolizer.a ] || { echo "build/libgoscope-symbolizer.a missing: run make all" >&2; exit 1; }
gcc -O2 -Iinclude -I. tests/bench/symbolizer_bench.c build/libgoscope-symbolizer.a -lpthread \
	-o "$OUT/symbolizer_bench"
SB=$OUT/symbolizer_bench
gosymbench() { # TOOLCHAIN -> path of gosymbench built with it
	local v=$1 bin=$OUT/gosymbench-go$1
	(cd tests/bench/go/gosymbench && "/usr/lib/go-$v/bin/go" build -o "$bin" .) >&2
	echo "$bin"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", (b > 0 ? a / b : 0) }'; }

echo "symbolizer_lookup: $NPCS PCs, >= ${SECS}s per measurement after a warm-up pass, $ROUNDS rounds (each round: goscope and debug/gosym, the order alternating)"
echo "host: $(nproc) CPUs, $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- 1. lookups per second ----
# measure NAME BINARY TOOLCHAIN DIST ROUNDS -> prints raw lines; sets R_INLINE R_NOINLINE (median
# ratio goscope/gosym) and the medians of the rates.
measure() {
	local name=$1 bin=$2 v=$3 dist=$4 rounds=$5 gs pcs r c g
	local ri=() rn=() rf=() ci=() cn=() cf=() gb=() gl=() chk_c="" chk_g=""
	gs=$(gosymbench "$v")
	pcs=$TMP/pcs-$name-$dist
	"$SB" gen "$bin" "$NPCS" 12345 "$pcs" "$dist" 2>&1
	for ((r = 1; r <= rounds; r++)); do
		# Alternate who goes first: the host's noise drifts over seconds.
		if ((r % 2)); then
			mapfile -t c < <("$SB" lookup "$bin" "$pcs" "$SECS")
			mapfile -t g < <("$gs" lookup "$bin" "$pcs" "$SECS")
		else
			mapfile -t g < <("$gs" lookup "$bin" "$pcs" "$SECS")
			mapfile -t c < <("$SB" lookup "$bin" "$pcs" "$SECS")
		fi
		printf "  round $r goscope: %s\n" "${c[@]}"
		printf "  round $r gosym:   %s\n" "${g[@]}"
		local c_in c_no c_first g_both g_line
		c_in=$(printf '%s\n' "${c[@]}" | grep 'mode=inline ' | tr ' ' '\n' | awk -F= '$1=="per_sec"{print $2}')
		c_no=$(printf '%s\n' "${c[@]}" | grep 'mode=noinline ' | tr ' ' '\n' | awk -F= '$1=="per_sec"{print $2}')
		c_first=$(printf '%s\n' "${c[@]}" | grep 'mode=inline-first-pass ' | tr ' ' '\n' | awk -F= '$1=="per_sec"{print $2}')
		g_both=$(printf '%s\n' "${g[@]}" | grep 'mode=pctoline+pctofunc ' | tr ' ' '\n' | awk -F= '$1=="per_sec"{print $2}')
		g_line=$(printf '%s\n' "${g[@]}" | grep 'mode=pctoline ' | tr ' ' '\n' | awk -F= '$1=="per_sec"{print $2}')
		ci+=("$c_in") cn+=("$c_no") cf+=("$c_first") gb+=("$g_both") gl+=("$g_line")
		ri+=("$(ratio "$c_in" "$g_both")") rn+=("$(ratio "$c_no" "$g_both")") rf+=("$(ratio "$c_first" "$g_both")")
		chk_c=$(printf '%s\n' "${c[@]}" | grep '^check')
		chk_g=$(printf '%s\n' "${g[@]}" | grep '^check')
	done
	if [ "$chk_c" = "$chk_g" ]; then
		echo "  cross-check: goscope (NO_INLINE raw function/file/line) and debug/gosym agree on every PC ($chk_c)"
	else
		echo "  cross-check: DISAGREE: goscope '$chk_c' vs debug/gosym '$chk_g'"
	fi
	M_CIN=$(median "${ci[@]}") M_CNO=$(median "${cn[@]}") M_GB=$(median "${gb[@]}") M_GL=$(median "${gl[@]}")
	R_INLINE=$(median "${ri[@]}") R_NOINLINE=$(median "${rn[@]}") R_FIRST=$(median "${rf[@]}")
	echo "  lookups/s (median of $rounds): goscope inline $M_CIN, goscope no-inline $M_CNO," \
		"goscope inline first pass on a fresh open $(median "${cf[@]}")," \
		"debug/gosym PCToLine+PCToFunc $M_GB, debug/gosym PCToLine alone $M_GL"
	echo "  ratio goscope/debug-gosym per round: inline ${ri[*]}; no-inline ${rn[*]}; inline first pass ${rf[*]}"
	echo "  ratio vs PCToLine alone (median rates): inline $(ratio "$M_CIN" "$M_GL"), no-inline $(ratio "$M_CNO" "$M_GL")"
}

for spec in "1.27:compile" "1.19:compile"; do
	v=${spec%%:*} tool=${spec#*:}
	bin=/usr/lib/go-$v/pkg/tool/linux_amd64/$tool
	if [ ! -x "$bin" ] || [ ! -x "/usr/lib/go-$v/bin/go" ]; then
		echo "skipped: go$v not installed"
		continue
	fi
	name=go$v-$tool
	echo
	echo "-- $name ($bin, $(stat -c %s "$bin") bytes), PCs uniform in the text range"
	measure "$name" "$bin" "$v" text "$ROUNDS"
	result "symbolizer_lookup_${name}_noinline_vs_gosym" "$R_NOINLINE" ">=" 10
	echo "RESULT symbolizer_lookup_${name}_inline_vs_gosym=$R_INLINE goal=none (inline expansion: more work than debug/gosym does)"
	echo "RESULT symbolizer_lookup_${name}_inline_first_pass_vs_gosym=$R_FIRST goal=none"
	echo "-- $name, PCs per function (information only, no goal; 1 round)"
	measure "$name" "$bin" "$v" func 1
done

# ---- 2. open + first lookup on the largest Go binary ----
big=$(ls -S /usr/lib/go-1.*/pkg/tool/linux_amd64/* /usr/lib/go-1.*/bin/go 2>/dev/null | sed -n 1p)
bigv=$(echo "$big" | sed -E 's|/usr/lib/go-([0-9.]+)/.*|\1|')
size=$(stat -c %s "$big")
gs=$(gosymbench "$bigv")
a2l=$("/usr/lib/go-$bigv/bin/go" tool -n addr2line) # builds (and caches) it when needed
pc=$("$SB" gen "$big" 1 777 /dev/stdout 2>/dev/null)
echo
echo "-- open + first lookup: $big (go$bigv, $size bytes), pc $pc; warm page cache (not dropped), $FIRST_RUNS runs, median"
first_c_ms=() first_c_rss=() first_g_ms=() first_g_rss=()
declare -A ex_ms ex_rss
tools=(goscope-lib gosym goscope-addr2line go-tool-addr2line addr2line-binary)
cat "$big" >/dev/null # warm the page cache for everyone
for ((i = 1; i <= FIRST_RUNS; i++)); do
	for t in "${tools[@]}"; do
		case $t in
		goscope-lib) l=$("$SB" exec "$SB" first "$big" "$pc" 2>"$TMP/first.out"); inner=$(cat "$TMP/first.out") ;;
		gosym) l=$("$SB" exec "$gs" first "$big" "$pc" 2>"$TMP/first.out"); inner=$(cat "$TMP/first.out") ;;
		goscope-addr2line) l=$("$SB" exec build/goscope addr2line -e "$big" "$pc" 2>"$TMP/first.out"); inner=$(tr '\n' ' ' <"$TMP/first.out") ;;
		go-tool-addr2line) l=$(echo "$pc" | "$SB" exec "/usr/lib/go-$bigv/bin/go" tool addr2line "$big" 2>"$TMP/first.out"); inner=$(tr '\n' ' ' <"$TMP/first.out") ;;
		addr2line-binary) l=$(echo "$pc" | "$SB" exec "$a2l" "$big" 2>"$TMP/first.out"); inner=$(tr '\n' ' ' <"$TMP/first.out") ;;
		esac
		echo "  run $i $t: $l | $inner"
		ex_ms[$t]="${ex_ms[$t]:-} $(field wall_ms "$l")"
		ex_rss[$t]="${ex_rss[$t]:-} $(field maxrss_kb "$l")"
		case $t in
		goscope-lib) first_c_ms+=("$(field ms "$inner")") first_c_rss+=("$(field vmhwm_kb "$inner")") ;;
		gosym) first_g_ms+=("$(field ms "$inner")") first_g_rss+=("$(field vmhwm_kb "$inner")") ;;
		esac
	done
done
echo "  medians, whole process (fork+exec to exit, wall ms / peak RSS KB of the process tree):"
for t in "${tools[@]}"; do
	# shellcheck disable=SC2086
	printf '    %-18s %8.1f ms %8d KB\n' "$t" "$(median ${ex_ms[$t]})" "$(median ${ex_rss[$t]})"
done
c_ms=$(median "${first_c_ms[@]}") c_rss=$(median "${first_c_rss[@]}")
g_ms=$(median "${first_g_ms[@]}") g_rss=$(median "${first_g_rss[@]}")
echo "  medians, in process (main() to the answer / VmHWM): goscope $c_ms ms, $c_rss KB;" \
	"debug/gosym $g_ms ms, $g_rss KB; goscope is $(ratio "$g_ms" "$c_ms")x faster and uses" \
	"$(ratio "$g_rss" "$c_rss")x less peak memory than debug/gosym;" \
	"go tool addr2line (whole process) $(median ${ex_ms[go-tool-addr2line]}) ms"
result symbolizer_first_lookup_ms "$c_ms" "<=" 10
result symbolizer_first_lookup_peak_rss_over_file_size "$(awk -v r="$c_rss" -v s="$size" 'BEGIN { printf "%.3f", r * 1024 / s }')" "<=" 0.10
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
