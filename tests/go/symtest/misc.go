package main

import (
	"reflect"

	"goscope.test/symtest/rec"
)

type reflTarget struct{}

//go:noinline
func (reflTarget) Method(x int) int {
	rec.Here()
	return x
}

//go:noinline
func reflFunc(x int) int {
	rec.Here()
	return x + 1
}

//go:noinline
func manyArgs(a, b, c, d, e, f, g, h, i, j, k, l int, s string, fl float64) int {
	rec.Here()
	return a + b + c + d + e + f + g + h + i + j + k + l + len(s) + int(fl)
}

//go:noinline
func bigFrame() int {
	var buf [8192]byte
	for i := range buf {
		buf[i] = byte(i)
	}
	rec.Here()
	return int(buf[100])
}

//go:noinline
func runMisc() {
	// Calls through reflect (assembly trampolines on the stack).
	out := reflect.ValueOf(reflFunc).Call([]reflect.Value{reflect.ValueOf(1)})
	sink += int(out[0].Int())
	m := reflect.ValueOf(reflTarget{}).MethodByName("Method")
	out = m.Call([]reflect.Value{reflect.ValueOf(2)})
	sink += int(out[0].Int())
	// reflect.MakeFunc: Go code called from reflect's assembly.
	var fn func(int) int
	mf := reflect.MakeFunc(reflect.TypeOf(fn), func(args []reflect.Value) []reflect.Value {
		rec.Here()
		return args
	})
	reflect.ValueOf(&fn).Elem().Set(mf)
	sink += fn(3)

	sink += manyArgs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, "s", 1.5)
	sink += bigFrame()
	sink += viaLineDirective(2)
}
