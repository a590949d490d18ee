package main

import (
	"goscope.test/symtest/inl"
	"goscope.test/symtest/rec"
)

//go:noinline
func runCrossPackage() {
	sink += inl.A(1)
	sink += inl.B(2)
	sink += inl.Short(3)
	sink += inl.D(4)
	f := inl.MakeFn(10) // closure created in an inlined function
	sink += f(1)
	sink += inl.Apply(f, 2)
	sink += inl.Apply(func(x int) int { rec.Here(); return x * 2 }, 3)
	crossDeep()
}

//go:noinline
func crossDeep() {
	sink += wrapA(5)
}

// wrapA is inlined and itself inlines inl.A (5 logical frames in one PC).
func wrapA(x int) int {
	return inl.A(x) + 1
}
