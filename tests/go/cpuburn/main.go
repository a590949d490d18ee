// cpuburn: CPU-bound workload with functions of known relative cost.
//
// Per round each worker does 10 work units: 6 in main.hot, 3 in main.warm,
// 1 in main.cold (a unit is the same amount of arithmetic everywhere).
// main.hot uses an inlined helper (main.mix) and calls the frameless leaf
// main.leaf; main.cold burns CPU at the bottom of a recursion 80 frames deep.
//
// Output: "ready <pid>" at start, "done <total work units>" at exit. With -report D,
// also "tick <unix ns> <work units so far>" every D, for benchmarks that compare
// throughput in windows of one long run (tests/bench/cpu_overhead.sh). With -gate, waits
// after "ready" for a line on stdin before burning (so profilers can attach first).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const unitIters = 20000

var (
	stopFlag int32
	sinkMu   sync.Mutex
	sink     uint64
)

func stopped() bool { return atomic.LoadInt32(&stopFlag) != 0 }

// mix is small and gets inlined into its callers.
func mix(x uint64) uint64 {
	x ^= x >> 13
	x *= 0x9E3779B97F4A7C15
	return x
}

// leaf is a frameless leaf function: arithmetic only, no calls, no stack frame.
//
//go:noinline
func leaf(x uint64) uint64 {
	return (x*2654435761 + 0x7F4A7C15) ^ (x >> 7)
}

// spin does one work unit of pure arithmetic in the calling function.
func spin(x uint64) uint64 {
	for i := 0; i < unitIters; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		x ^= x >> 17
	}
	return x
}

//go:noinline
func hot(x uint64) uint64 {
	for i := 0; i < 6; i++ {
		// half of each unit through the inlined helper and the leaf (fewer
		// iterations, as leaf(mix(x)) costs ~1.7x the spin loop body)
		for j := 0; j < unitIters*3/10; j++ {
			x = leaf(mix(x))
		}
		for j := 0; j < unitIters/2; j++ {
			x = x*6364136223846793005 + 1442695040888963407
			x ^= x >> 17
		}
	}
	return x
}

//go:noinline
func warm(x uint64) uint64 {
	for i := 0; i < 3; i++ {
		x = spin(x)
	}
	return x
}

//go:noinline
func deep(depth int, x uint64) uint64 {
	if depth == 0 {
		return spin(x)
	}
	return deep(depth-1, x+1) + 1
}

//go:noinline
func cold(x uint64) uint64 {
	return deep(80, x)
}

// progress counts work units as they are done (for -report); one padded slot per worker,
// so the workers never share a cache line.
type progress struct {
	units int64
	_     [56]byte
}

//go:noinline
func worker(id int, units *int64, done *progress, wg *sync.WaitGroup) {
	defer wg.Done()
	x := uint64(id + 1)
	var n int64
	for !stopped() {
		x = hot(x)
		x = warm(x)
		x = cold(x)
		n += 10
		atomic.StoreInt64(&done.units, n)
	}
	atomic.AddInt64(units, n)
	sinkMu.Lock()
	sink ^= x
	sinkMu.Unlock()
}

func main() {
	duration := flag.Duration("duration", 5*time.Second, "how long to burn CPU")
	goroutines := flag.Int("goroutines", 2, "number of burning goroutines")
	cpuprofile := flag.String("cpuprofile", "", "write a runtime/pprof CPU profile to this file")
	report := flag.Duration("report", 0, "print the work units done so far at this interval")
	gate := flag.Bool("gate", false, "after \"ready\", wait for a line on stdin before burning")
	flag.Parse()
	runCgoHook()

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "ready %d\n", os.Getpid())
	w.Flush()
	if *gate {
		// For tests that must attach profilers before any work is done.
		bufio.NewReader(os.Stdin).ReadString('\n')
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		select {
		case <-sigs:
		case <-time.After(*duration):
		}
		atomic.StoreInt32(&stopFlag, 1)
	}()

	var units int64
	var wg sync.WaitGroup
	done := make([]progress, *goroutines)
	for i := 0; i < *goroutines; i++ {
		wg.Add(1)
		go worker(i, &units, &done[i], &wg)
	}
	if *report > 0 {
		go func() {
			out := bufio.NewWriter(os.Stdout)
			for range time.Tick(*report) {
				var sum int64
				for i := range done {
					sum += atomic.LoadInt64(&done[i].units)
				}
				fmt.Fprintf(out, "tick %d %d\n", time.Now().UnixNano(), sum)
				out.Flush()
			}
		}()
	}
	wg.Wait()
	fmt.Fprintf(w, "done %d\n", units)
	w.Flush()
}
