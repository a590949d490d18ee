package main

import (
	"goscope.test/symtest/inl"
	"goscope.test/symtest/rec"
)

type Number interface {
	~int | ~int64 | ~float64 | ~uint8
}

//go:noinline
func sum[T Number](xs []T) T {
	var s T
	for _, x := range xs {
		s += x
	}
	rec.Here()
	return s
}

// genSmall is inlinable.
func genSmall[T any](v T) T {
	rec.Here()
	return v
}

type Stack[T any] struct {
	items []T
}

//go:noinline
func (s *Stack[T]) Push(v T) {
	s.items = append(s.items, v)
	rec.Here()
}

//go:noinline
func (s Stack[T]) Len() int {
	rec.Here()
	return len(s.items)
}

func (s *Stack[T]) Each(f func(T)) {
	for _, v := range s.items {
		f(v)
	}
}

type myInt int

type point struct{ x, y int }

//go:noinline
func mapSlice[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, 0, len(xs))
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

//go:noinline
func runGenerics() {
	sink += sum([]int{1, 2, 3})
	sink += int(sum([]int64{4, 5}))
	sink += int(sum([]float64{1.5, 2.5}))
	sink += int(sum([]uint8{7}))
	sink += int(sum([]myInt{8, 9}))

	sink += genSmall(1)
	_ = genSmall("s")
	_ = genSmall(point{1, 2})
	_ = genSmall(&point{3, 4})

	var si Stack[int]
	si.Push(1)
	si.Push(2)
	sink += si.Len()
	var ss Stack[string]
	ss.Push("a")
	sink += ss.Len()
	var sp Stack[*point]
	sp.Push(&point{})
	sink += sp.Len()
	si.Each(func(v int) { rec.Here(); sink += v })

	strs := mapSlice([]int{1, 2}, func(i int) string { rec.Here(); return "x" })
	sink += len(strs)

	sink += inl.Ident(5)
	_ = inl.Ident("five")
	p := inl.Pair[string, int]{Key: "k", Val: 1}
	_ = p.First()
	p.SetVal(2)
	q := inl.Pair[int, []byte]{Key: 1}
	sink += q.First()
	q.SetVal(nil)
}
