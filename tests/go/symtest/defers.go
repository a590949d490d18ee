package main

import "goscope.test/symtest/rec"

//go:noinline
func deferredNamed() {
	rec.Here()
}

//go:noinline
func withDefers() {
	defer deferredNamed()
	defer func() {
		rec.Here()
	}()
	rec.Here()
}

//go:noinline
func deferInLoop() {
	for i := 0; i < 2; i++ {
		defer func(i int) {
			rec.Here()
			sink += i
		}(i)
	}
}

//go:noinline
func panicker(depth int) {
	if depth == 0 {
		var m map[string]int
		m["boom"] = 1 // runtime panic (assignment to nil map)
	}
	panicker(depth - 1)
}

//go:noinline
func recoverDivide(a, b int) (r int) {
	defer func() {
		rec.Here() // while panicking (runtime error), before recover
		if e := recover(); e != nil {
			r = -1
		}
	}()
	return a / b
}

//go:noinline
func recoverExplicit() {
	defer func() {
		rec.Here()
		recover()
		rec.Here() // after recover
	}()
	defer deferredNamed() // runs during panicking
	panic("explicit")
}

//go:noinline
func recoverRuntime() {
	defer func() {
		recover()
	}()
	defer func() {
		rec.Here()
	}()
	panicker(3)
}

//go:noinline
func runDefers() {
	withDefers()
	deferInLoop()
	sink += recoverDivide(1, 0)
	recoverExplicit()
	recoverRuntime()
}
