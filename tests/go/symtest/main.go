// symtest: ground truth for the goscope symbolizer.
//
// It calls rec.Here (which does runtime.Callers(1, pcs)) at many points in
// code that exercises inlining, closures, generics, methods, interfaces,
// goroutines, defers, panics, recursion, method values/expressions and
// //line directives. For every distinct PC it prints
//
//	P 0x<pc>
//	F <Function>\t<File>\t<Line>      (one per frame from CallersFrames([]uintptr{pc}))
//
// followed by "END <number of P records>". With --wait it then blocks until
// stdin reaches EOF.
//
// Note: runtime.Callers already returns one "logical" PC per inlined frame
// (the real return address plus fake PCs at the inline marks of the outer
// functions), so CallersFrames of one PC yields exactly one frame.
//
// With --phys the records are instead for every distinct *physical* PC (a
// real return address, what a stack unwinder sees) and the F lines are the
// full inline expansion of that PC, innermost first, as CallersFrames yields
// it for the group of logical PCs runtime.Callers produced for that physical
// frame. The last physical frame of a stack truncated at 64 PCs is omitted.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"

	"goscope.test/symtest/rec"
)

var sink int

func main() {
	runCgoHook()
	rec.Here()

	runInlineChains()
	runCrossPackage()
	runGenerics()
	runMethods()
	runInterfaces()
	runClosures()
	runGoroutines()
	runDefers()
	runRecursion()
	runMethodValues()
	runLongFunction(3)
	runLineDirectives()
	runMisc()
	rec.Here()

	wait, phys := false, false
	for _, a := range os.Args[1:] {
		switch a {
		case "--wait", "-wait":
			wait = true
		case "--phys", "-phys":
			phys = true
		default:
			fmt.Fprintf(os.Stderr, "usage: symtest [--phys] [--wait]\n")
			os.Exit(2)
		}
	}

	w := bufio.NewWriterSize(os.Stdout, 1<<16)
	var pcs []uintptr
	groups := map[uintptr][]uintptr{}
	if phys {
		pcs, groups = physGroups()
	} else {
		pcs = rec.PCs()
		for _, pc := range pcs {
			groups[pc] = []uintptr{pc}
		}
	}
	for _, pc := range pcs {
		fmt.Fprintf(w, "P %#x\n", pc)
		frames := runtime.CallersFrames(groups[pc])
		for {
			f, more := frames.Next()
			fmt.Fprintf(w, "F %s\t%s\t%d\n", f.Function, f.File, f.Line)
			if !more {
				break
			}
		}
	}
	fmt.Fprintf(w, "END %d\n", len(pcs))
	w.Flush()
	_ = sink

	if wait {
		io.Copy(io.Discard, os.Stdin)
	}
	os.Exit(0)
}

// physName returns the name of the physical (outermost) function containing pc.
func physName(pc uintptr) (string, bool) {
	f := runtime.FuncForPC(pc)
	if f == nil {
		return "", false
	}
	outer := runtime.FuncForPC(f.Entry())
	if outer == nil {
		return "", false
	}
	return outer.Name(), true
}

// frameName returns the (possibly inlined) function name CallersFrames gives for pc.
func frameName(pc uintptr) string {
	f, _ := runtime.CallersFrames([]uintptr{pc}).Next()
	return f.Function
}

// physEntry returns the entry of the physical function containing the
// instruction before pc (pc is a return address or a fake inline PC + 1).
func physEntry(pc uintptr) uintptr {
	f := runtime.FuncForPC(pc - 1)
	if f == nil {
		return 0
	}
	return f.Entry()
}

// physGroups splits every collected stack into physical frames: a real PC
// followed by the fake PCs of its inlined callers, ending with the PC whose
// frame is the physical function itself, or before the first PC of another
// physical function (runtime.Callers elides wrapper functions, so a group
// may end without its physical function appearing).
func physGroups() ([]uintptr, map[uintptr][]uintptr) {
	var order []uintptr
	groups := map[uintptr][]uintptr{}
	for _, st := range rec.Stacks {
		for i := 0; i < len(st); {
			start := i
			entry := physEntry(st[start])
			complete := false
			for i < len(st) {
				pc := st[i]
				if i > start && physEntry(pc) != entry {
					complete = true
					break
				}
				i++
				pn, ok := physName(pc)
				if !ok || frameName(pc) == pn {
					complete = true
					break
				}
			}
			if !complete && len(st) == rec.Max {
				break // truncated stack
			}
			pc := st[start]
			if _, dup := groups[pc]; !dup {
				groups[pc] = st[start:i]
				order = append(order, pc)
			}
		}
	}
	return order, groups
}
