package main

import (
	"fmt"

	"goscope.test/symtest/rec"
)

type Shape interface {
	Area() int
	Name() string
}

type Square struct{ S int }
type Rect struct{ W, H int }

//go:noinline
func (s Square) Area() int { rec.Here(); return s.S * s.S }
func (s Square) Name() string {
	rec.Here()
	return "square"
}

//go:noinline
func (r *Rect) Area() int { rec.Here(); return r.W * r.H }

//go:noinline
func (r *Rect) Name() string {
	rec.Here()
	return "rect"
}

type stringerT struct{ v int }

func (s stringerT) String() string {
	rec.Here()
	return "stringer"
}

//go:noinline
func measure(s Shape) int {
	return s.Area() + len(s.Name())
}

//go:noinline
func runInterfaces() {
	shapes := []Shape{Square{2}, &Rect{2, 3}, &Square{4}}
	for _, s := range shapes {
		sink += measure(s)
	}
	var st fmt.Stringer = stringerT{1}
	sink += len(st.String())
	sink += len(fmt.Sprint(stringerT{2})) // called back from fmt
}
