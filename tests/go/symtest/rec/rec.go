// Package rec collects runtime.Callers PCs for the symtest program.
package rec

import "runtime"

var (
	seen  = map[uintptr]bool{}
	order []uintptr
	// Stacks holds every collected stack (a copy of the PC slice).
	Stacks [][]uintptr
	// Points counts how many times Here was called.
	Points int
)

// Here records the PCs of its call stack (including its own frame).
// It must never be inlined so that every call site is a real call.
//
//go:noinline
func Here() {
	var pcs [Max]uintptr
	n := runtime.Callers(1, pcs[:])
	Points++
	Stacks = append(Stacks, append([]uintptr(nil), pcs[:n]...))
	for _, pc := range pcs[:n] {
		if !seen[pc] {
			seen[pc] = true
			order = append(order, pc)
		}
	}
}

// Max is the size of the PC buffer used by Here.
const Max = 64

// PCs returns all distinct PCs in first-seen order.
func PCs() []uintptr { return order }
