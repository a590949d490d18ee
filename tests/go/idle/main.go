// idle: prints "ready <pid>", then blocks until stdin reaches EOF or
// SIGTERM/SIGINT, then exits 0. A few sleeping goroutines make it look like
// a real service.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

//go:noinline
func idleWorker(id int, stop <-chan struct{}) {
	t := time.NewTicker(time.Duration(100+id*50) * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

func main() {
	runCgoHook()
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		go idleWorker(i, stop)
	}
	go func() {
		for {
			time.Sleep(time.Second)
		}
	}()

	done := make(chan struct{}, 2)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		done <- struct{}{}
	}()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		done <- struct{}{}
	}()

	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "ready %d\n", os.Getpid())
	w.Flush()

	<-done
	close(stop)
	os.Exit(0)
}
