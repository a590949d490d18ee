// Package inl holds small functions meant to be inlined into package main
// (cross-package mid-stack inlining), plus generics and closures.
package inl

import "goscope.test/symtest/rec"

// A -> B -> C -> D: a 4-level inline chain across the package boundary.
func A(x int) int {
	return B(x)
}

func B(x int) int {
	return C(x)
}

func C(x int) int {
	return D(x)
}

func D(x int) int {
	rec.Here()
	return x
}

// Short is a 2-level inline chain.
func Short(x int) int {
	return D(x) * 5
}

// Ident is an inlinable generic function.
func Ident[T any](v T) T {
	rec.Here()
	return v
}

// Pair is a generic type with an inlinable method and a non-inlinable one.
type Pair[K comparable, V any] struct {
	Key K
	Val V
}

func (p Pair[K, V]) First() K {
	rec.Here()
	return p.Key
}

//go:noinline
func (p *Pair[K, V]) SetVal(v V) {
	rec.Here()
	p.Val = v
}

// MakeFn is inlinable and returns a closure (closure created inside an
// inlined function).
func MakeFn(n int) func(int) int {
	return func(x int) int {
		rec.Here()
		return x + n
	}
}

// Apply is inlinable and calls a function value.
func Apply(f func(int) int, x int) int {
	return f(x)
}

// Counter has value and pointer receiver methods.
type Counter struct{ N int }

func (c *Counter) Inc() {
	c.N++
	rec.Here()
}

//go:noinline
func (c Counter) Get() int {
	rec.Here()
	return c.N
}
