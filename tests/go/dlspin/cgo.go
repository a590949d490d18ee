//go:build goscope_cgo

package main

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

typedef long (*burn_fn)(void);
typedef long (*spin_fn)(burn_fn);
static spin_fn spin;
static int start_pipe[2];
static volatile int stop;

// Called back by the .so's goscope_spin: blocks (off CPU, so never sampled) until told to
// start, then burns CPU in the main binary. Every sample's stack then holds a return address
// into the .so, first seen by the profiler after the test truncated the file, whose code is
// never executed again (a truncated file takes its pages away, even from the process that
// runs them). Exits the program when told to rather than return into the .so. Keeps a frame
// pointer so that the profiler's frame-pointer walk finds that return address.
__attribute__((optimize("no-omit-frame-pointer"), noinline)) static long burn(void)
{
	unsigned long x = 1;
	char c;

	while (read(start_pipe[0], &c, 1) < 0 && errno == EINTR)
		;
	for (;;) {
		for (int i = 0; i < 1000000; i++)
			x = x * 6364136223846793005UL + 1442695040888963407UL;
		if (stop)
			_exit(0);
	}
	return (long)x;
}

static int load(const char *path)
{
	void *h = dlopen(path, RTLD_NOW);

	if (!h)
		return -1;
	spin = (spin_fn)dlsym(h, "goscope_spin");
	if (!spin)
		return -2;
	return pipe(start_pipe) < 0 ? -3 : 0;
}

static long call(void) { return spin(burn); }
static void start_burn(void) { (void)!write(start_pipe[1], "x", 1); }
static void set_stop(void) { stop = 1; }
*/
import "C"

import (
	"fmt"
	"unsafe"
)

func init() {
	loadLib = func(path string) error {
		p := C.CString(path)
		defer C.free(unsafe.Pointer(p))
		if rc := C.load(p); rc != 0 {
			return fmt.Errorf("loading %s: error %d", path, int(rc))
		}
		return nil
	}
	callLib = func() { C.call() }
	startLib = func() { C.start_burn() }
	stopLib = func() { C.set_stop() }
}
