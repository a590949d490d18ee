// dlspin: a Go program that loads a user's shared object and burns CPU in it, for the test
// where the user truncates that .so while root goscope profiles the program
// (tests/integration/test_sigbus.c).
//
// Usage: dlspin LIB.so. Loads LIB.so (dlopen) and calls its goscope_spin(burn) at once;
// burn, a C function of this program, blocks until a line arrives on stdin, then burns CPU
// until stdin closes and exits the program. Meanwhile Go code (main.goSpin) burns CPU so the
// profiler sees the process before the test truncates the .so. The .so's code is entered
// once and never returned to, so the program survives the .so being truncated (even to 0
// bytes) while every stack holds a return address into it. Output: "ready <pid>" once
// loaded, "spinning" when the line arrived. Needs cgo (mode "cgo"): without it the program
// says so and exits 2.
package main

import (
	"bufio"
	"fmt"
	"os"
	"sync/atomic"
)

// Set by cgo.go (build tag goscope_cgo).
var (
	loadLib  func(path string) error
	callLib  func() // never returns
	startLib func() // makes callLib burn CPU
	stopLib  func() // makes callLib exit the program
)

var sink int64

// goSpin burns CPU in Go code until stop is set.
func goSpin(stop *int32) {
	x := int64(1)
	for atomic.LoadInt32(stop) == 0 {
		for i := 0; i < 100000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	atomic.StoreInt64(&sink, x)
}

func main() {
	if len(os.Args) != 2 || loadLib == nil {
		fmt.Fprintln(os.Stderr, "usage: dlspin LIB.so (built with cgo)")
		os.Exit(2)
	}
	if err := loadLib(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "dlspin:", err)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", os.Getpid())
	in := bufio.NewReader(os.Stdin)
	var stop int32
	go goSpin(&stop)
	go func() {
		if _, err := in.ReadString('\n'); err == nil {
			atomic.StoreInt32(&stop, 1)
			startLib()
			fmt.Println("spinning")
			in.ReadString('\n') // EOF: the test is done
		}
		stopLib()
		startLib() // in case it was not started: burn sees stop and exits
	}()
	callLib()
}
