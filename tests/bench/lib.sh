# tests/bench/lib.sh — helpers the benchmark scripts share (sourced, not run).

# field KEY TEXT...: the value of the first KEY=VALUE word in TEXT.
field() {
	local k=$1; shift
	printf '%s\n' "$@" | tr ' ' '\n' | awk -F= -v k="$k" '$1 == k {print $2; exit}'
}
# median NUMBER...: "nan" when there are none.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
	if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
mean() { printf '%s\n' "$@" | awk '{s += $1} END { printf "%.4f\n", NR ? s / NR : 0 }'; }
# result NAME VALUE OP GOAL: the "RESULT name=value goal=OPGOAL (ok|MISSED)" line run.sh collects.
result() {
	local ok
	ok=$(awk -v v="$2" -v op="$3" -v g="$4" 'BEGIN {
		if (v == "nan") print "MISSED"; else if (op == ">=") print (v >= g ? "ok" : "MISSED");
		else print (v <= g ? "ok" : "MISSED") }')
	echo "RESULT $1=$2 goal=$3$4 ($ok)"
}

# busy_ms: CPU time (ms) all CPUs spent busy since boot, from /proc/stat (steal excluded).
busy_ms() {
	head -1 /proc/stat | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f\n", ($2+$3+$4+$7+$8) * 1000 / hz }'
}
# steal_ms: CPU time (ms) the hypervisor gave other guests instead of this VM, since boot.
steal_ms() {
	head -1 /proc/stat | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f\n", $9 * 1000 / hz }'
}
# units_at NS FILE: work units done at time NS, interpolated between the "tick <ns> <units>"
# lines tests/go/cpuburn -report writes to FILE.
units_at() {
	awk -v q="$1" '$1 == "tick" { t = $2 + 0; u = $3 + 0
		if (t >= q) { if (have) printf "%.1f\n", pu + (u - pu) * (q - pt) / (t - pt); else print u; found = 1; exit }
		pt = t; pu = u; have = 1 }
		END { if (!found) { if (have) print pu; else print "nan" } }' "$2"
}
# now_ns: the wall clock in nanoseconds.
now_ns() { echo "${EPOCHREALTIME/./}000"; }
