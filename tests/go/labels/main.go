// labels: CPU work split across goroutines under pprof.Do labels with known ratios, for the
// labels accuracy test (tests/integration/test_labels.c) and benchmark
// (tests/bench/labels_overhead.sh).
//
// Each worker goroutine does, per round, under pprof.Do:
//
//	work=a             1 unit
//	work=b             2 units
//	work=c, route=/c   3 units
//	work=long + a key longer than 32 bytes and a value longer than 64 (truncated by goscope)
//	                   1 unit
//	work=many + 10 more labels x00..x09 (11: more than goscope keeps) 1 unit
//
// (a unit is the same arithmetic everywhere), so every label set's share of the CPU is known.
// With -depth N the work runs N frames deeper. With -block, one more goroutine under
// work=blocker sleeps in a loop (block profiles). With -emptykey every label set (the
// blocker's too) gets one more label whose key is empty, pprof.Labels("", "e"), which Go
// allows and goscope must survive; a sixth set, work=emptykey, gets 1 unit.
// With -cpuprofile FILE the program profiles itself with runtime/pprof at -hz.
//
// Output: "ready <pid>", then (with -gate, after a line on stdin) the work runs for
// -duration; "done <units>" at the end.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const unitIters = 200000

var (
	stop  int32
	units int64
	sink  uint64
)

// burn does n units of arithmetic.
//
//go:noinline
func burn(n int) {
	x := uint64(n)
	for u := 0; u < n; u++ {
		for i := 0; i < unitIters; i++ {
			x = x*6364136223846793005 + 1442695040888963407
			x ^= x >> 17
		}
	}
	atomic.AddUint64(&sink, x)
	atomic.AddInt64(&units, int64(n))
}

type group struct {
	labels pprof.LabelSet
	weight int
}

var emptyKey bool

func groups() []group {
	many := []string{"work", "many"}
	for i := 0; i < 10; i++ {
		many = append(many, fmt.Sprintf("x%02d", i), fmt.Sprintf("v%02d", i))
	}
	gs := []group{
		{labelSet("work", "a"), 1},
		{labelSet("work", "b"), 2},
		{labelSet("work", "c", "route", "/c"), 3},
		{labelSet("work", "long", "k"+strings.Repeat("K", 39), strings.Repeat("v", 100)), 1},
		{labelSet(many...), 1},
	}
	if emptyKey {
		gs = append(gs, group{labelSet("work", "emptykey"), 1})
	}
	return gs
}

// labelSet is pprof.Labels(kv...), plus the empty key with -emptykey.
func labelSet(kv ...string) pprof.LabelSet {
	if emptyKey {
		kv = append(kv, "", "e")
	}
	return pprof.Labels(kv...)
}

// deep burns w units at the bottom of a recursion depth frames deep (stacks of a real
// service's depth, for tests/bench/labels_overhead.sh).
//
//go:noinline
func deep(depth, w int) {
	if depth <= 0 {
		burn(w)
		return
	}
	deep(depth-1, w)
}

func worker(wg *sync.WaitGroup, depth int) {
	defer wg.Done()
	gs := groups()
	ctx := context.Background()
	for atomic.LoadInt32(&stop) == 0 {
		for _, g := range gs {
			w := g.weight
			pprof.Do(ctx, g.labels, func(context.Context) { deep(depth, w) })
		}
	}
}

// blocker sleeps in a loop under its own labels: its parks are the block profile's.
func blocker(wg *sync.WaitGroup) {
	defer wg.Done()
	pprof.Do(context.Background(), labelSet("work", "blocker"), func(context.Context) {
		for atomic.LoadInt32(&stop) == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	})
}

func main() {
	duration := flag.Duration("duration", 5*time.Second, "how long to work")
	workers := flag.Int("workers", 1, "worker goroutines")
	cpuprofile := flag.String("cpuprofile", "", "write a runtime/pprof CPU profile here")
	hz := flag.Int("hz", 100, "runtime/pprof sampling rate")
	block := flag.Bool("block", false, "also run a blocking goroutine under labels")
	gate := flag.Bool("gate", false, "wait for a line on stdin before working")
	depth := flag.Int("depth", 0, "extra stack frames above the work")
	flag.BoolVar(&emptyKey, "emptykey", false, "add a label with an empty key to every set")
	flag.Parse()

	fmt.Printf("ready %d\n", os.Getpid())
	if *gate {
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			panic(err)
		}
		// Before StartCPUProfile, which then keeps this rate (and says so on stderr).
		runtime.SetCPUProfileRate(*hz)
		if err := pprof.StartCPUProfile(f); err != nil {
			panic(err)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	var wg sync.WaitGroup
	for i := 0; i < *workers; i++ {
		wg.Add(1)
		go worker(&wg, *depth)
	}
	if *block {
		wg.Add(1)
		go blocker(&wg)
	}
	time.Sleep(*duration)
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	fmt.Printf("done %d\n", atomic.LoadInt64(&units))
}
