// execa: burns CPU in main.burnA, then replaces itself (syscall.Exec) with another program
// (-next, e.g. execb) — a target that execs mid-capture (tests/integration/test_cpu_hardening.c).
//
// Output: "ready <pid>" at start; with -gate, waits for a line on stdin before burning.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"
)

var sink uint64

//go:noinline
func burnA(d time.Duration) {
	end := time.Now().Add(d)
	x := sink
	for time.Now().Before(end) {
		for i := 0; i < 100000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	sink = x
}

func main() {
	next := flag.String("next", "", "program to exec after burning")
	duration := flag.Duration("duration", 2*time.Second, "burn time, here and in -next")
	gate := flag.Bool("gate", false, "wait for a line on stdin before burning")
	flag.Parse()
	fmt.Printf("ready %d\n", os.Getpid())
	if *gate {
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	burnA(*duration)
	if *next == "" {
		return
	}
	err := syscall.Exec(*next, []string{*next, "-duration", duration.String()}, os.Environ())
	fmt.Fprintf(os.Stderr, "exec %s: %v\n", *next, err)
	os.Exit(1)
}
