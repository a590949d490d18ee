// gdump: goroutines parked in known places (channel receive and send, select, a mutex, a
// sleep, a network accept and read, a blocking system call, a goroutine locked to its
// thread, pprof labels, an inlined call, a recursion), for checking `goscope goroutines`
// against the runtime's own dump.
//
// Prints "ready <pid>" once every goroutine has been started and has had time to park, then
// reads commands on stdin, one per line:
//
//	dump PATH   writes runtime.Stack(buf, true) (every goroutine) to PATH, prints "dumped"
//	crash       panics (run it with GOTRACEBACK=crash for a core of the abort)
//
// The main goroutine (goid 1) is the one that dumps: it is the only one whose state
// changes after a dump.
package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	never    = make(chan int)
	never2   = make(chan int)
	mu       sync.Mutex
	sink     int
	started  sync.WaitGroup
	pipeRead int
)

//go:noinline
func recvForever() { sink += <-never }

//go:noinline
func sendForever() { never2 <- 1 }

//go:noinline
func selectForever() {
	select {
	case v := <-never:
		sink += v
	case never2 <- 2:
	}
}

//go:noinline
func lockForever() {
	mu.Lock()
	sink++
	mu.Unlock()
}

//go:noinline
func sleepForever() { time.Sleep(24 * time.Hour) }

//go:noinline
func acceptForever(ln net.Listener) {
	c, err := ln.Accept()
	if err == nil {
		c.Close()
	}
}

//go:noinline
func readForever(c net.Conn) {
	buf := make([]byte, 1)
	c.Read(buf)
}

//go:noinline
func syscallForever() {
	buf := make([]byte, 1)
	syscall.Read(pipeRead, buf)
}

//go:noinline
func lockedForever() {
	runtime.LockOSThread()
	<-never
}

//go:noinline
func labelledForever() {
	pprof.Do(context.Background(), pprof.Labels("worker", "w1", "shard", "7"),
		func(ctx context.Context) { <-never })
}

func inlinedRecv() int { return <-never } // inlined into its caller

//go:noinline
func callsInlined() { sink += inlinedRecv() }

//go:noinline
func recurse(n int) {
	if n == 0 {
		<-never
		return
	}
	recurse(n - 1)
	sink++
}

func spawner() {
	go func() { recvForever() }() // created by main.spawner.func1 / a closure
	sendForever()
}

func main() {
	runCgoHook()
	mu.Lock() // held forever: lockForever parks on it
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		fmt.Fprintln(os.Stderr, "pipe:", err)
		os.Exit(1)
	}
	pipeRead = fds[0]

	go recvForever()
	go sendForever()
	go selectForever()
	go lockForever()
	go sleepForever()
	go acceptForever(ln)
	go syscallForever()
	go lockedForever()
	go labelledForever()
	go callsInlined()
	go recurse(20)
	go spawner()
	conn, err := net.Dial("tcp", ln2.Addr().String())
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	srv, _ := ln2.Accept()
	go readForever(srv)
	_ = conn
	time.Sleep(300 * time.Millisecond) // every goroutine parks
	runtime.GC()                      // and the GC's workers are parked again
	time.Sleep(100 * time.Millisecond)

	fmt.Printf("ready %d\n", os.Getpid())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd := strings.Fields(in.Text())
		switch {
		case len(cmd) == 2 && cmd[0] == "dump":
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			os.WriteFile(cmd[1], buf[:n], 0o644)
			fmt.Println("dumped")
		case len(cmd) == 1 && cmd[0] == "crash":
			panic("gdump: crash requested")
		}
	}
}
