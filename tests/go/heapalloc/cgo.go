//go:build goscope_cgo

package main

/*
static int goscope_cgo_add(int a, int b) { return a + b; }
*/
import "C"

func init() {
	cgoHook = func() int { return int(C.goscope_cgo_add(20, 22)) }
}
