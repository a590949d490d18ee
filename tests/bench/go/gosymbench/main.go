// gosymbench: the debug/gosym side of the symbolizer benchmarks (tests/bench/run.sh).
//
//	gosymbench lookup BINARY PCFILE MIN_SECONDS
//	    Builds the table (debug/elf + debug/gosym: NewLineTable with the .text address,
//	    NewTable), then times PCToLine + PCToFunc over the PCs of PCFILE (one "0x..." a line),
//	    repeating the list until MIN_SECONDS passed after one untimed warm-up pass; also times
//	    PCToLine alone. Prints the same "check" line as symbolizer_bench for a cross-check.
//	gosymbench first BINARY PC
//	    Time from entering main to the answer for one PC (open, read the pclntab, build the
//	    table, PCToLine + PCToFunc) and the peak RSS of this process.
package main

import (
	"bufio"
	"debug/elf"
	"debug/gosym"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func die(f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "gosymbench: "+f+"\n", a...)
	os.Exit(1)
}

func table(path string) *gosym.Table {
	f, err := elf.Open(path)
	if err != nil {
		die("%v", err)
	}
	defer f.Close()
	text := f.Section(".text")
	pcln := f.Section(".gopclntab")
	if text == nil || pcln == nil {
		die("%s: no .text or .gopclntab section", path)
	}
	pclnData, err := pcln.Data()
	if err != nil {
		die("%s: .gopclntab: %v", path, err)
	}
	var symData []byte
	if s := f.Section(".gosymtab"); s != nil {
		if symData, err = s.Data(); err != nil {
			die("%s: .gosymtab: %v", path, err)
		}
	}
	t, err := gosym.NewTable(symData, gosym.NewLineTable(pclnData, text.Addr))
	if err != nil {
		die("%s: %v", path, err)
	}
	return t
}

func readPCs(path string) []uint64 {
	f, err := os.Open(path)
	if err != nil {
		die("%v", err)
	}
	defer f.Close()
	var pcs []uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
		if err != nil {
			die("%s: %v", path, err)
		}
		pcs = append(pcs, v)
	}
	return pcs
}

func fnv(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= 0x100000001b3
	}
	return h
}

var sink int

func lookup(args []string) {
	if len(args) != 3 {
		die("usage: lookup BINARY PCFILE MIN_SECONDS")
	}
	minS, err := strconv.ParseFloat(args[2], 64)
	if err != nil {
		die("%v", err)
	}
	pcs := readPCs(args[1])
	t0 := time.Now()
	t := table(args[0])
	fmt.Printf("open seconds=%.6f\n", time.Since(t0).Seconds())

	h := uint64(0xcbf29ce484222325)
	found := 0
	for _, pc := range pcs {
		file, line, fn := t.PCToLine(pc)
		if fn != nil {
			found++
			h = fnv(h, append([]byte(fn.Name), 0))
			h = fnv(h, append([]byte(file), 0))
			h = fnv(h, []byte(strconv.Itoa(line)+"\n"))
		} else {
			h = fnv(h, []byte("-\n"))
		}
	}
	fmt.Printf("check pcs=%d found=%d hash=%016x\n", len(pcs), found, h)

	modes := []struct {
		name string
		both bool
	}{{"pctoline+pctofunc", true}, {"pctoline", false}}
	for _, m := range modes {
		run := func() {
			for _, pc := range pcs {
				file, line, fn := t.PCToLine(pc)
				sink += len(file) + line
				if fn != nil {
					sink += len(fn.Name)
				}
				if m.both {
					if f := t.PCToFunc(pc); f != nil {
						sink += int(f.Entry & 1)
					}
				}
			}
		}
		run() // warm-up
		n := 0
		t0 := time.Now()
		var el float64
		for {
			run()
			n += len(pcs)
			if el = time.Since(t0).Seconds(); el >= minS {
				break
			}
		}
		fmt.Printf("lookup mode=%s lookups=%d seconds=%.6f per_sec=%.0f\n", m.name, n, el,
			float64(n)/el)
	}
}

func statusKB(key string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key+":") {
			v, _ := strconv.ParseInt(strings.Fields(l[len(key)+1:])[0], 10, 64)
			return v
		}
	}
	return -1
}

func first(args []string) {
	t0 := time.Now()
	if len(args) != 2 {
		die("usage: first BINARY PC")
	}
	pc, err := strconv.ParseUint(strings.TrimPrefix(args[1], "0x"), 16, 64)
	if err != nil {
		die("%v", err)
	}
	t := table(args[0])
	file, line, fn := t.PCToLine(pc)
	f := t.PCToFunc(pc)
	el := time.Since(t0)
	if fn == nil || f == nil {
		die("no function at %s", args[1])
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("first ms=%.3f vmhwm_kb=%d maxrss_kb=%d rssfile_kb=%d func=%s file=%s line=%d\n",
		el.Seconds()*1e3, statusKB("VmHWM"), ru.Maxrss, statusKB("RssFile"), f.Name, file, line)
}

func main() {
	if len(os.Args) < 2 {
		die("usage: gosymbench lookup|first ...")
	}
	switch os.Args[1] {
	case "lookup":
		lookup(os.Args[2:])
	case "first":
		first(os.Args[2:])
	default:
		die("unknown command %q", os.Args[1])
	}
}
