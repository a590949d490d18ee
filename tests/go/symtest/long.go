package main

import "goscope.test/symtest/rec"

// runLongFunction calls Here at many different lines of one function.
//
//go:noinline
func runLongFunction(n int) {
	a := n
	rec.Here()
	a++
	b := a * 2

	rec.Here()
	if b > 0 {
		rec.Here()
	} else {
		rec.Here()
	}

	c := b + a
	for i := 0; i < 2; i++ {
		rec.Here()
		c += i
	}

	switch c % 3 {
	case 0:
		rec.Here()
	case 1:
		rec.Here()
	default:
		rec.Here()
	}

	sink += lvl4(c)

	d := []int{a, b, c}
	for _, v := range d {
		if v%2 == 0 {
			rec.Here()
		}
	}

	rec.Here()
	sink += tiny2(a)

	// Filler lines so that the next call lands on a much larger line number.
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	//
	rec.Here()
	sink += a + b + c
}
