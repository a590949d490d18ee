package main

import "goscope.test/symtest/rec"

//go:noinline
func runLineDirectives() {
	sink += lineInlined(1)
	sink += viaLineDirective(1)
}

// The functions below have their positions rewritten with //line directives,
// so the file and line reported differ from this file.

//line generated_by_tool.go:1000
func lineInlined(x int) int {
	rec.Here()
	return x
}

//line /virtual/abs/path/other.go:5000
//go:noinline
func viaLineDirective(x int) int {
	rec.Here()
	/*line :7777:1*/ rec.Here()
	return x + lineInlined(x)
}
