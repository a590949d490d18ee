package main

import "goscope.test/symtest/rec"

// lvl1 -> lvl2 -> lvl3 -> lvl4 -> lvl5: inline chain inside package main.
func lvl1(x int) int {
	return lvl2(x)
}

func lvl2(x int) int {
	return lvl3(x)
}

func lvl3(x int) int {
	return lvl4(x)
}

func lvl4(x int) int {
	return lvl5(x)
}

func lvl5(x int) int {
	rec.Here()
	return x
}

// tiny3 -> tiny2 -> tiny1: a short chain, each calling Here at a different depth.
func tiny3(x int) int {
	return tiny2(x) * 3
}

func tiny2(x int) int {
	return tiny1(x) * 2
}

func tiny1(x int) int {
	rec.Here()
	return x
}

//go:noinline
func runInlineChains() {
	sink += lvl1(1)
	sink += lvl1(2) // second call site of the same chain
	sink += lvl3(3)
	sink += lvl5(4)
	sink += tiny3(5)
	sink += tiny2(6)
	for i := 0; i < 3; i++ {
		sink += tiny1(i) // same PC each iteration
	}
	inlinedIntoNoinline()
}

//go:noinline
func inlinedIntoNoinline() {
	sink += lvl2(7)
	sink += tiny3(8)
}
