package main

// cgoHook is set by cgo.go (build tag goscope_cgo) to a function that calls
// into C, so cgo-mode binaries really contain and execute C code.
var cgoHook func() int

func runCgoHook() {
	if cgoHook != nil && cgoHook() != 42 {
		panic("cgo hook returned wrong value")
	}
}
