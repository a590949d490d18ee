// blocker: goroutines that block with a known delay (-delay, default 20ms)
// per event on different primitives, each in its own function
// (main.blockChanSend, main.blockChanRecv, main.blockSelect, main.blockMutex,
// main.blockRWMutex, main.blockWaitGroup, main.blockCond, main.blockSleep,
// main.blockNetRead), looping until -duration.
//
// -wait: after "ready", wait for a line on stdin before blocking (and before
// enabling the block profile), so a profiler can attach first.
// -stress: CPU spinners, allocation (frequent GC, stack shrinking) and a deep
// recursion before every blocking operation, so parks happen under heavy
// preemption and stack growth (gopark's morestack restart path).
// -stuck: one goroutine (main.blockForever) blocked on a channel for the whole run.
//
// Output: "ready <pid>" at start; at exit one line per kind
// "kind <name> count <n> delay_ns <total>" (measured by the program itself
// around the blocking operation), then "done".
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type stat struct {
	name  string
	count int64
	delay int64
}

func (s *stat) add(d time.Duration) {
	atomic.AddInt64(&s.count, 1)
	atomic.AddInt64(&s.delay, int64(d))
}

var (
	stress  bool
	sink    []byte
	delay   time.Duration
	stopped int32
	done    = make(chan struct{})
)

func running() bool {
	if stress {
		grow(64)
	}
	return atomic.LoadInt32(&stopped) == 0
}

// grow recurses with a large frame so the goroutine's stack must grow (it is
// shrunk again by the GC the allocators cause).
//
//go:noinline
func grow(n int) byte {
	var buf [512]byte
	buf[n%512] = byte(n)
	if n == 0 {
		return buf[0]
	}
	return grow(n-1) + buf[n%512]
}

func startStress() {
	for i := 0; i < 2; i++ {
		go func() { // spinner: forces preemption requests
			x := 0
			for atomic.LoadInt32(&stopped) == 0 {
				x++
			}
			_ = x
		}()
	}
	go func() { // allocator: frequent GCs, which shrink stacks
		for atomic.LoadInt32(&stopped) == 0 {
			sink = make([]byte, 64<<10)
			time.Sleep(100 * time.Microsecond)
		}
	}()
}

//go:noinline
func blockForever(ch chan int) {
	<-ch
}

//go:noinline
func blockChanSend(s *stat) {
	for running() {
		ch := make(chan int)
		go func() { time.Sleep(delay); <-ch }()
		t := time.Now()
		ch <- 1
		s.add(time.Since(t))
	}
}

//go:noinline
func blockChanRecv(s *stat) {
	for running() {
		ch := make(chan int)
		go func() { time.Sleep(delay); ch <- 1 }()
		t := time.Now()
		<-ch
		s.add(time.Since(t))
	}
}

//go:noinline
func blockSelect(s *stat) {
	for running() {
		a, b := make(chan int), make(chan int)
		go func() { time.Sleep(delay); b <- 1 }()
		t := time.Now()
		select {
		case <-a:
		case <-b:
		}
		s.add(time.Since(t))
	}
}

//go:noinline
func blockMutex(s *stat) {
	var mu sync.Mutex
	for running() {
		mu.Lock()
		go func() { time.Sleep(delay); mu.Unlock() }()
		t := time.Now()
		mu.Lock()
		s.add(time.Since(t))
		mu.Unlock()
	}
}

//go:noinline
func blockRWMutex(s *stat) {
	var mu sync.RWMutex
	for running() {
		mu.Lock()
		go func() { time.Sleep(delay); mu.Unlock() }()
		t := time.Now()
		mu.RLock()
		s.add(time.Since(t))
		mu.RUnlock()
	}
}

//go:noinline
func blockWaitGroup(s *stat) {
	for running() {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { time.Sleep(delay); wg.Done() }()
		t := time.Now()
		wg.Wait()
		s.add(time.Since(t))
	}
}

//go:noinline
func blockCond(s *stat) {
	var mu sync.Mutex
	c := sync.NewCond(&mu)
	for running() {
		ready := false
		go func() {
			time.Sleep(delay)
			mu.Lock()
			ready = true
			mu.Unlock()
			c.Signal()
		}()
		t := time.Now()
		mu.Lock()
		for !ready {
			c.Wait()
		}
		mu.Unlock()
		s.add(time.Since(t))
	}
}

//go:noinline
func blockSleep(s *stat) {
	for running() {
		t := time.Now()
		time.Sleep(delay)
		s.add(time.Since(t))
	}
}

//go:noinline
func blockNetRead(s *stat) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return
	}
	defer ln.Close()
	go func() {
		// server: for each 1-byte request, wait delay then answer 1 byte.
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 1)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			time.Sleep(delay)
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		return
	}
	defer conn.Close()
	buf := []byte{'x'}
	for running() {
		if _, err := conn.Write(buf); err != nil {
			return
		}
		t := time.Now()
		if _, err := conn.Read(buf); err != nil {
			return
		}
		s.add(time.Since(t))
	}
}

func main() {
	duration := flag.Duration("duration", 2*time.Second, "how long to run")
	flag.DurationVar(&delay, "delay", 20*time.Millisecond, "blocking delay per event")
	blockprofile := flag.String("blockprofile", "", "write the runtime block profile to this file at exit")
	wait := flag.Bool("wait", false, "wait for a line on stdin before blocking")
	stuck := flag.Bool("stuck", false, "one goroutine blocked for the whole run")
	flag.BoolVar(&stress, "stress", false, "preemption, GC and stack growth around every park")
	flag.Parse()
	runCgoHook()

	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "ready %d\n", os.Getpid())
	w.Flush()
	if *wait {
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	if *blockprofile != "" {
		runtime.SetBlockProfileRate(1)
	}
	if stress {
		startStress()
	}
	if *stuck {
		go blockForever(make(chan int))
	}

	kinds := []struct {
		name string
		fn   func(*stat)
	}{
		{"chan_send", blockChanSend},
		{"chan_recv", blockChanRecv},
		{"select", blockSelect},
		{"mutex", blockMutex},
		{"rwmutex", blockRWMutex},
		{"waitgroup", blockWaitGroup},
		{"cond", blockCond},
		{"sleep", blockSleep},
		{"net_read", blockNetRead},
	}
	stats := make([]*stat, len(kinds))
	var wg sync.WaitGroup
	for i, k := range kinds {
		stats[i] = &stat{name: k.name}
		wg.Add(1)
		go func(fn func(*stat), s *stat) {
			defer wg.Done()
			fn(s)
		}(k.fn, stats[i])
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sigs:
	case <-time.After(*duration):
	}
	atomic.StoreInt32(&stopped, 1)
	wg.Wait()
	close(done)

	if *blockprofile != "" {
		f, err := os.Create(*blockprofile)
		if err == nil {
			err = pprof.Lookup("block").WriteTo(f, 0)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "blockprofile:", err)
		}
	}
	for _, s := range stats {
		fmt.Fprintf(w, "kind %s count %d delay_ns %d\n", s.name, atomic.LoadInt64(&s.count), atomic.LoadInt64(&s.delay))
	}
	fmt.Fprintln(w, "done")
	w.Flush()
}
