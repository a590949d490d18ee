package main

import (
	"sort"
	"sync"

	"goscope.test/symtest/rec"
)

// globalInit runs a closure during package initialization.
var globalInit = func() int {
	rec.Here()
	return 1
}()

func init() {
	rec.Here()
}

func init() {
	func() {
		rec.Here()
	}()
}

//go:noinline
func callIt(f func()) { f() }

func makeCounter() func() int {
	n := 0
	return func() int {
		n++
		rec.Here()
		return n
	}
}

//go:noinline
func runClosures() {
	// Immediately invoked closure (usually inlined).
	func() {
		rec.Here()
	}()
	// Closure called through a non-inlined function.
	x := 3
	callIt(func() {
		rec.Here()
		sink += x
	})
	// Nested closures.
	callIt(func() {
		rec.Here()
		callIt(func() {
			rec.Here()
			func() {
				rec.Here()
			}()
		})
	})
	// Closure escaping from a (inlinable) constructor.
	c := makeCounter()
	sink += c()
	sink += c()
	// Closure called back from the standard library.
	xs := []int{3, 1, 2}
	first := true
	sort.Slice(xs, func(i, j int) bool {
		if first {
			first = false
			rec.Here()
		}
		return xs[i] < xs[j]
	})
	var once sync.Once
	once.Do(func() { rec.Here() })
	sink += globalInit
}
