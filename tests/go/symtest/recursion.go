package main

import "goscope.test/symtest/rec"

//go:noinline
func recurse(n int) int {
	if n == 0 {
		rec.Here()
		return 0
	}
	if n%5 == 0 {
		rec.Here()
	}
	return recurse(n-1) + 1
}

//go:noinline
func ping(n int) int {
	if n == 0 {
		rec.Here()
		return 0
	}
	return pong(n-1) + 1
}

//go:noinline
func pong(n int) int {
	if n == 0 {
		rec.Here()
		return 0
	}
	return ping(n-1) + 2
}

//go:noinline
func runRecursion() {
	sink += recurse(12)
	sink += ping(7)
	sink += ping(6)
	sink += recurse(80) // deeper than 64: the PC list is truncated
}
