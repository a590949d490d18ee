// pingpong: two goroutines ping-ponging over unbuffered channels.
//
// Output: "ready <pid>" at start, "roundtrips_per_sec <float>" at the end.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

//go:noinline
func pinger(ping chan<- int, pong <-chan int, stop <-chan struct{}) int64 {
	var n int64
	for {
		select {
		case <-stop:
			close(ping)
			return n
		default:
		}
		ping <- int(n)
		<-pong
		n++
	}
}

//go:noinline
func ponger(ping <-chan int, pong chan<- int) {
	for v := range ping {
		pong <- v
	}
}

func main() {
	duration := flag.Duration("duration", 2*time.Second, "how long to ping-pong")
	flag.Parse()
	runCgoHook()

	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "ready %d\n", os.Getpid())
	w.Flush()

	stop := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		select {
		case <-sigs:
		case <-time.After(*duration):
		}
		close(stop)
	}()

	ping, pong := make(chan int), make(chan int)
	go ponger(ping, pong)
	start := time.Now()
	n := pinger(ping, pong, stop)
	el := time.Since(start).Seconds()
	fmt.Fprintf(w, "roundtrips_per_sec %.1f\n", float64(n)/el)
	w.Flush()
}
