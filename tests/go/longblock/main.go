// longblock: many goroutines that each block, over and over, for much longer
// than a throttled capture's drain, on a channel fed by a timer goroutine.
//
// A throttled `goscope block` follows the parks of each sampling window to
// their wake-up with probes only for a short drain; longer blocks are timed by
// polling the goroutines' status. Each goroutine here parks again right after
// it is woken, at the same place and for the same reason, so the poller must
// tell one park from the next (g.trackingSeq) or it would merge them.
//
// After "ready <pid>", waits for a line on stdin, then runs -goroutines
// goroutines for -duration, each looping on a receive (main.waitLong) that a
// per-goroutine timer answers after -delay. Prints "blocks <n> delay_ns
// <total>" (measured around each receive) then "done".
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

var blocks, delayNs int64

//go:noinline
func waitLong(ch chan struct{}) {
	<-ch
}

func worker(d, phase time.Duration, until time.Time, wg *sync.WaitGroup) {
	defer wg.Done()
	ch := make(chan struct{})
	time.Sleep(phase) // spread the parks evenly over time
	for time.Now().Before(until) {
		time.AfterFunc(d, func() { ch <- struct{}{} })
		t := time.Now()
		waitLong(ch)
		atomic.AddInt64(&blocks, 1)
		atomic.AddInt64(&delayNs, int64(time.Since(t)))
	}
}

func main() {
	n := flag.Int("goroutines", 500, "blocking goroutines")
	d := flag.Duration("delay", 200*time.Millisecond, "how long each block lasts")
	duration := flag.Duration("duration", 5*time.Second, "how long to run")
	flag.Parse()
	runCgoHook()

	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "ready %d\n", os.Getpid())
	w.Flush()
	bufio.NewReader(os.Stdin).ReadString('\n')

	until := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go worker(*d, *d*time.Duration(i)/time.Duration(*n), until, &wg)
	}
	wg.Wait()
	fmt.Fprintf(w, "blocks %d delay_ns %d\ndone\n", blocks, delayNs)
	w.Flush()
}
