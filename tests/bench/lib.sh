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
