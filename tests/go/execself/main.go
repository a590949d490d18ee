// execself: a Go program that blocks goroutines and then execs itself (a new image in the
// same process: same pid, start time and executable), for goscope block's exec handling.
//
// Old image: a busy ping-pong; prints "ready <pid>"; on SIGUSR1 blocks 50 goroutines for good
// on a channel receive and, half a second later, execs itself (with -phase new). New image: prints "new <pid>",
// ping-pongs for -after, prints "done" and exits.
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
func blockForever(c <-chan int) { <-c }

func pingpong(stop <-chan struct{}) {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	for {
		select {
		case <-stop:
			close(ping)
			return
		default:
		}
		ping <- 1
		<-pong
	}
}

func main() {
	phase := flag.String("phase", "old", "old: block, then exec on SIGUSR1; new: the exec'd image")
	after := flag.Duration("after", 3*time.Second, "how long the new image runs")
	flag.Parse()
	runCgoHook()
	w := bufio.NewWriter(os.Stdout)
	if *phase == "new" {
		fmt.Fprintf(w, "new %d\n", os.Getpid())
		w.Flush()
		stop := make(chan struct{})
		time.AfterFunc(*after, func() { close(stop) })
		pingpong(stop)
		fmt.Fprintln(w, "done")
		w.Flush()
		return
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	stop := make(chan struct{})
	go pingpong(stop)
	fmt.Fprintf(w, "ready %d\n", os.Getpid())
	w.Flush()
	<-sigs
	// Parked while the capture runs, and never woken: the exec ends them.
	never := make(chan int)
	for i := 0; i < 50; i++ {
		go blockForever(never)
	}
	time.Sleep(500 * time.Millisecond)
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	args := []string{exe, "-phase", "new", "-after", after.String()}
	if err := syscall.Exec(exe, args, os.Environ()); err != nil {
		panic(err)
	}
}
