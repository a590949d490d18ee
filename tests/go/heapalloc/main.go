// heapalloc: allocates known amounts at known call sites (some freed), runs runtime.GC(),
// writes its own profile (runtime/pprof) to -o, prints "ready <pid>" and then stays still
// (GC off, no allocation) until stdin reaches EOF, so that goscope's read of its
// memory-profile buckets can be compared with the profile the program wrote itself.
//
//	-mode heap   the heap profile (pprof.WriteHeapProfile) — default
//	-mode block  SetBlockProfileRate(1), goroutines block on channels; the block profile
//	-mode mutex  SetMutexProfileFraction(1), contended sync.Mutex; the mutex profile
//	-mode rate0  runtime.MemProfileRate = 0 before allocating; no profile written
//	-mode churn  MemProfileRate = 4096, goroutines allocate and drop without end (GC runs):
//	             the buckets change while goscope reads them
//	-mode bench  MemProfileRate = 1, -buckets distinct buckets, then a busy loop that
//	             prints "tick <unix ns> <iterations so far>" every -tick
package main

import (
	"bufio"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"time"
)

var keep [][]byte

//go:noinline
func allocSmall(n int) {
	for i := 0; i < n; i++ {
		keep = append(keep, make([]byte, 4096))
	}
}

//go:noinline
func allocLarge(n int) {
	for i := 0; i < n; i++ {
		keep = append(keep, make([]byte, 1<<20))
	}
}

var sink []byte

//go:noinline
func allocFreed(n int) {
	for i := 0; i < n; i++ {
		sink = make([]byte, 64<<10) // dropped by the next iteration: freed
	}
	sink = nil
}

// mk is small enough to be inlined into viaInline: the profile shows both frames.
func mk(n int) []byte { return make([]byte, n) }

//go:noinline
func viaInline(n int) {
	for i := 0; i < n; i++ {
		keep = append(keep, mk(32<<10))
	}
}

// allocGeneric is instantiated at two shapes: runtime/pprof names each by its full symbol
// name (main.allocGeneric[go.shape.uint8], main.allocGeneric[go.shape.int64]), where a
// traceback prints main.allocGeneric[...].
//
//go:noinline
func allocGeneric[T any](n int) {
	for i := 0; i < n; i++ {
		genericKeep = append(genericKeep, make([]T, 8192))
	}
}

var genericKeep []any

type holder struct{ bufs [][]byte }

//go:noinline
func (h *holder) grow(n int) {
	for i := 0; i < n; i++ {
		h.bufs = append(h.bufs, make([]byte, 256<<10))
	}
}

var h holder

func heapMode() {
	allocSmall(2000)
	allocLarge(16)
	allocFreed(200)
	viaInline(300)
	h.grow(40)
	allocGeneric[uint8](500) // 4 MB in 8 KiB slices: ~8 samples at the default rate
	allocGeneric[int64](100) // 6.4 MB in 64 KiB slices
	func() {
		for i := 0; i < 100; i++ {
			keep = append(keep, make([]byte, 100<<10))
		}
	}()
}

// bucketTree allocates at the end of one of 2^depth call paths (path's bits choose left
// or right at each level), each of size classes sizes: 2^depth * len(sizes) buckets.
//
//go:noinline
func left(depth, path int, size int) {
	if depth == 0 {
		keep = append(keep, make([]byte, size))
		return
	}
	branch(depth-1, path, size)
}

//go:noinline
func right(depth, path int, size int) {
	if depth == 0 {
		keep = append(keep, make([]byte, size))
		return
	}
	branch(depth-1, path, size)
}

func branch(depth, path int, size int) {
	if path&(1<<depth) != 0 {
		right(depth, path, size)
	} else {
		left(depth, path, size)
	}
}

var benchSizes = []int{16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256}

func benchBuckets(n int) {
	depth := 0
	for (1<<depth)*len(benchSizes) < n {
		depth++
	}
	made := 0
	for path := 0; path < 1<<depth && made < n; path++ {
		for _, s := range benchSizes {
			if made == n {
				break
			}
			branch(depth, path, s)
			made++
		}
	}
}

func blockMode() {
	ch := make(chan int)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			time.Sleep(100 * time.Microsecond)
			ch <- i
		}
	}()
	for i := 0; i < 200; i++ {
		<-ch
	}
	wg.Wait()
}

func mutexMode() {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				mu.Lock()
				time.Sleep(20 * time.Microsecond)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func main() {
	mode := flag.String("mode", "heap", "heap|block|mutex|rate0|bench")
	out := flag.String("o", "", "write the program's own profile there")
	buckets := flag.Int("buckets", 10000, "bench: distinct buckets")
	tick := flag.Duration("tick", 100*time.Millisecond, "bench: ops report period")
	flag.Parse()
	runCgoHook()

	profile := "heap"
	switch *mode {
	case "heap":
		heapMode()
	case "block":
		runtime.SetBlockProfileRate(1)
		blockMode()
		profile = "block"
	case "mutex":
		runtime.SetMutexProfileFraction(1)
		mutexMode()
		profile = "mutex"
	case "rate0":
		runtime.MemProfileRate = 0
		heapMode()
		profile = ""
	case "churn":
		runtime.MemProfileRate = 4096
		for g := 0; g < 2; g++ {
			go churn(g)
		}
		fmt.Printf("ready %d\n", os.Getpid())
		io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		return
	case "bench":
		runtime.MemProfileRate = 1
		benchBuckets(*buckets)
		runtime.MemProfileRate = 512 * 1024
		profile = ""
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", *mode)
		os.Exit(2)
	}
	runtime.GC()
	runtime.GC()
	debug.SetGCPercent(-1) // nothing changes the published profile from here on
	if profile != "" && *out != "" {
		f, err := os.Create(*out)
		if err == nil {
			err = pprof.Lookup(profile).WriteTo(f, 0)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	fmt.Printf("ready %d\n", os.Getpid())
	if *mode == "bench" {
		debug.SetGCPercent(100)
		go spin(*tick)
	}
	io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	runtime.KeepAlive(keep)
	runtime.KeepAlive(genericKeep)
	runtime.KeepAlive(&h)
}

// spin hashes in a loop and reports its cumulative iterations: the bench's throughput.
func spin(tick time.Duration) {
	var buf [32]byte
	ops := 0
	next := time.Now().Add(tick)
	for {
		for i := 0; i < 1000; i++ {
			buf = sha256.Sum256(buf[:])
			ops++
		}
		if now := time.Now(); now.After(next) {
			fmt.Printf("tick %d %d\n", now.UnixNano(), ops)
			next = next.Add(tick)
		}
	}
}

var churnSink [][]byte

// churn allocates at a few call sites (different sizes and depths) and drops most of it.
func churn(g int) {
	for i := 0; ; i++ {
		b := make([]byte, 64+(i%64)*32)
		if i%16 == 0 {
			churnSink = append(churnSink, b)
			if len(churnSink) > 4096 {
				churnSink = churnSink[:0]
			}
		}
		if i%1000 == 0 {
			branch(i%4, i, 512+g*64)
			keep = keep[:0]
		}
	}
}
