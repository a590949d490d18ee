package main

import (
	"sync"

	"goscope.test/symtest/rec"
)

//go:noinline
func goWorker(wg *sync.WaitGroup, n int) {
	defer wg.Done()
	sink += lvl1(n)
	rec.Here()
}

//go:noinline
func runGoroutines() {
	var wg sync.WaitGroup
	// Run goroutines one at a time so the output order is deterministic.
	wg.Add(1)
	go goWorker(&wg, 1)
	wg.Wait()

	wg.Add(1)
	go func() {
		defer wg.Done()
		rec.Here()
	}()
	wg.Wait()

	done := make(chan struct{})
	go func(c chan struct{}) {
		func() {
			rec.Here()
		}()
		close(c)
	}(done)
	<-done

	p := &Point{1, 1}
	wg.Add(1)
	go func() {
		p.Scale(2)
		wg.Done()
	}()
	wg.Wait()
}
