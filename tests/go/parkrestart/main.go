// parkrestart: parks whose runtime.gopark prologue goes through morestack.
//
// Go's split-stack prologue re-runs a function from its first byte after
// morestack, which a synchronous preemption request (g.stackguard0 set to
// stackPreempt by sysmon or the GC) and stack growth both cause. In a real
// program that hits gopark's own prologue only now and then. Here it happens
// on every park: main.parkRestart sets the request itself (requestPreempt, in
// assembly) and calls runtime.gopark next, with no other prologue between, so
// gopark branches to morestack, the goroutine is preempted, and gopark runs
// again from its entry. A probe on gopark's entry fires twice per park here;
// goscope must count each park once.
//
// runtime.gopark and runtime.goready are reached with go:linkname (both are on
// the runtime's list of linknamed functions kept for outside packages).
//
// After "ready <pid>", waits for a line on stdin, then parks -parks times
// (each woken by another goroutine with goready after -delay) and prints
// "parks <n> delay_ns <total>" then "done".
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"
)

//go:linkname gopark runtime.gopark
func gopark(unlockf func(unsafe.Pointer, unsafe.Pointer) bool, lock unsafe.Pointer, reason uint8, traceReason uint8, traceskip int)

//go:linkname goready runtime.goready
func goready(gp unsafe.Pointer, traceskip int)

func requestPreempt()

// parked holds the g of the parked goroutine once it is really parked
// (publishCommit runs on the scheduler stack after the g is _Gwaiting).
var parked uintptr

// waitReasonZero: the runtime's reason 0 (""), the same number in every version.
const waitReasonZero = 0

func publishCommit(gp unsafe.Pointer, slot unsafe.Pointer) bool {
	atomic.StoreUintptr((*uintptr)(slot), uintptr(gp))
	return true
}

//go:noinline
func parkRestart() {
	requestPreempt()
	gopark(publishCommit, unsafe.Pointer(&parked), waitReasonZero, 0, 1)
}

func waker(n int, delay time.Duration) {
	for i := 0; i < n; i++ {
		var gp uintptr
		for gp = atomic.LoadUintptr(&parked); gp == 0; gp = atomic.LoadUintptr(&parked) {
			runtime.Gosched()
		}
		atomic.StoreUintptr(&parked, 0)
		time.Sleep(delay)
		goready(unsafe.Pointer(gp), 1)
	}
}

func main() {
	parks := flag.Int("parks", 500, "parks to make")
	delay := flag.Duration("delay", 200*time.Microsecond, "time each park lasts at least")
	flag.Parse()
	runCgoHook()

	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "ready %d\n", os.Getpid())
	w.Flush()
	bufio.NewReader(os.Stdin).ReadString('\n')

	go waker(*parks, *delay)
	var total time.Duration
	for i := 0; i < *parks; i++ {
		t := time.Now()
		parkRestart()
		total += time.Since(t)
	}
	fmt.Fprintf(w, "parks %d delay_ns %d\ndone\n", *parks, total.Nanoseconds())
	w.Flush()
}
