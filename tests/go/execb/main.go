// execb: the program execa execs into: burns CPU in main.burnB (a function execa does not
// have) for -duration, then exits. Its code is laid out differently from execa's (other
// packages), so execa's symbol table names other functions at its PCs.
package main

import (
	"flag"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

var sink uint64

//go:noinline
func burnB(d time.Duration) {
	end := time.Now().Add(d)
	x := sink
	for time.Now().Before(end) {
		for i := 0; i < 100000; i++ {
			x ^= x<<13 + 0x9e3779b97f4a7c15
			x ^= x >> 7
		}
	}
	sink = x
}

func main() {
	duration := flag.Duration("duration", 2*time.Second, "burn time")
	flag.Parse()
	words := strings.Fields("exec b burns here " + strconv.Itoa(os.Getpid()))
	sort.Strings(words)
	burnB(*duration)
	if len(words) == 0 {
		os.Exit(1)
	}
}
