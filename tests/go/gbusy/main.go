// gbusy: many goroutines parked for good (main.parkedForever) next to pairs of goroutines
// that park and wake each other all the time (a channel ping-pong), for reading goroutines
// while they change, and for the 100,000-goroutine benchmark.
//
//	-parked N   goroutines parked forever (default 50)
//	-pairs M    ping-pong pairs (default 8)
//
// Prints "ready <pid>" once the parked goroutines are all started, then answers stdin lines:
// "count" prints the number of ping-pong round trips so far.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

var (
	never  = make(chan int)
	trips  atomic.Int64
	sink   int
	parked sync.WaitGroup
)

//go:noinline
func parkedForever() {
	parked.Done()
	sink += <-never
}

//go:noinline
func ping(in, out chan int) {
	for {
		out <- 1
		<-in
		trips.Add(1)
	}
}

//go:noinline
func pong(in, out chan int) {
	for {
		<-in
		out <- 1
	}
}

func main() {
	n := flag.Int("parked", 50, "goroutines parked forever")
	pairs := flag.Int("pairs", 8, "ping-pong pairs")
	flag.Parse()
	runCgoHook()
	parked.Add(*n)
	for i := 0; i < *n; i++ {
		go parkedForever()
	}
	parked.Wait()
	for i := 0; i < *pairs; i++ {
		a, b := make(chan int), make(chan int)
		go ping(a, b)
		go pong(b, a)
	}
	fmt.Printf("ready %d\n", os.Getpid())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "count" {
			fmt.Println(trips.Load())
		}
	}
}
