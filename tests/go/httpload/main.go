// httpload: a net/http server and a Go load generator for it, for the
// `goscope block` overhead benchmark (tests/bench/block_http.sh).
//
//	httpload -serve                  prints "ready <pid> <addr>", serves until killed
//	httpload -load ADDR -c N -duration D   prints "rps <requests per second>"
//	  with -report I, also "tick <unix ns> <requests so far>" every I
//
// The handler does a little work and takes a mutex, so requests block on
// network IO, the mutex and channels like a real service.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

var (
	mu    sync.Mutex
	count int64
)

func handler(w http.ResponseWriter, r *http.Request) {
	mu.Lock()
	count++
	n := count
	mu.Unlock()
	done := make(chan int, 1)
	go func() { done <- int(n % 7) }()
	fmt.Fprintf(w, "hello %d %d\n", n, <-done)
}

func serve() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "ready %d %s\n", os.Getpid(), ln.Addr())
	w.Flush()
	http.Serve(ln, http.HandlerFunc(handler))
}

func load(addr string, conc int, d, report time.Duration) {
	var total int64
	tr := &http.Transport{MaxIdleConnsPerHost: conc}
	client := &http.Client{Transport: tr}
	until := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(until) {
				resp, err := client.Get("http://" + addr + "/")
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				atomic.AddInt64(&total, 1)
			}
		}()
	}
	if report > 0 {
		go func() {
			out := bufio.NewWriter(os.Stdout)
			for range time.Tick(report) {
				fmt.Fprintf(out, "tick %d %d\n", time.Now().UnixNano(), atomic.LoadInt64(&total))
				out.Flush()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("rps %.1f\n", float64(total)/time.Since(start).Seconds())
}

func main() {
	srv := flag.Bool("serve", false, "run the server")
	addr := flag.String("load", "", "generate load against this address")
	conc := flag.Int("c", 8, "concurrent clients")
	d := flag.Duration("duration", 3*time.Second, "load duration")
	report := flag.Duration("report", 0, "print the requests done so far at this interval")
	flag.Parse()
	runCgoHook()
	if *srv {
		serve()
		return
	}
	load(*addr, *conc, *d, *report)
}
