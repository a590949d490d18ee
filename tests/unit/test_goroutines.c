/* test_goroutines.c — unit tests of the goroutine reader's pieces that need no process: the
 * Go-version gate, the g field table, the core parser's errors, frame visibility. */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "goruntime/coredump.h"
#include "goruntime/goroutines.h"
#include "goruntime/goversion_table.h"

Test(goroutines, go_before_117_is_unsupported)
{
	struct goversion_facts f;
	struct gs_error err = {0};

	cr_assert_eq(goversion_lookup("go1.16.15", &f, &err), -EPROTONOSUPPORT);
	cr_assert(strstr(err.msg, "unsupported"), "%s", err.msg);
	cr_assert(strstr(err.msg, "go1.16.15"), "%s", err.msg);
	cr_assert_eq(goversion_lookup("go1.17", &f, &err), 0);
}

/* The fields the reader uses are inside sizeof(g) in every version, and the measured
 * versions carry the DWARF numbers (docs/go-runtime.md). */
Test(goroutines, g_fields_inside_g)
{
	static const char *const versions[] = {"go1.17", "go1.19", "go1.20", "go1.21",
					       "go1.22", "go1.23", "go1.24", "go1.25",
					       "go1.26", "go1.27", "go1.30"};

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		struct goversion_facts f;

		cr_assert_eq(goversion_lookup(versions[i], &f, NULL), 0);
		cr_assert_lt(f.g_labels + 8, f.g_size + 1, "%s", versions[i]);
		cr_assert_lt(f.g_startpc + 8, f.g_size + 1, "%s", versions[i]);
		cr_assert_lt(f.g_sched_bp, f.g_syscallsp, "%s", versions[i]);
		cr_assert_lt(f.g_waitreason, f.g_size, "%s", versions[i]);
	}
}

Test(goroutines, g_fields_measured)
{
	struct goversion_facts f;

	cr_assert_eq(goversion_lookup("go1.19.8", &f, NULL), 0);
	cr_assert_eq(f.g_sched_bp, 104);
	cr_assert_eq(f.g_lockedm, 232);
	cr_assert_eq(f.g_parent_goid, 0);
	cr_assert_eq(f.g_labels, 360);
	cr_assert_eq(goversion_lookup("go1.23.5", &f, NULL), 0);
	cr_assert_eq(f.g_syscallbp, 128);
	cr_assert_eq(f.g_waitsince, 176);
	cr_assert_eq(goversion_lookup("go1.27.3", &f, NULL), 0);
	cr_assert_eq(f.g_sched_bp, 96);
	cr_assert_eq(f.m_curg, 184);
	cr_assert_eq(f.m_procid, 64);
	cr_assert(f.labels_slice);
}

Test(goroutines, core_parser_errors)
{
	static uint8_t buf[4096];
	struct gr_core *c;
	struct gs_error err = {0};
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;

	cr_assert_eq(gr_core_open_mem(buf, 10, &c, &err), -EINVAL);
	cr_assert(strstr(err.msg, "not an ELF file"), "%s", err.msg);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_machine = EM_X86_64;
	eh->e_type = ET_EXEC;
	cr_assert_eq(gr_core_open_mem(buf, sizeof(buf), &c, &err), -EINVAL);
	cr_assert(strstr(err.msg, "not a core file"), "%s", err.msg);
	eh->e_type = ET_CORE;
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 1000; /* program headers past the end */
	eh->e_phoff = 64;
	cr_assert_eq(gr_core_open_mem(buf, sizeof(buf), &c, &err), -EIO);
	eh->e_phnum = 1; /* one empty header: no memory */
	cr_assert_eq(gr_core_open_mem(buf, sizeof(buf), &c, &err), -EINVAL);
	cr_assert(strstr(err.msg, "no memory segments"), "%s", err.msg);
}

Test(goroutines, frames_shown_like_go)
{
	struct gs_frame f = {0};

	f.function = "runtime.gopark";
	f.function_len = strlen(f.function);
	cr_assert_not(gr_frame_shown(&f));
	f.function = "runtime.Gosched";
	f.function_len = strlen(f.function);
	cr_assert(gr_frame_shown(&f));
	f.function = "runtime.(*Func).Name";
	f.function_len = strlen(f.function);
	cr_assert(gr_frame_shown(&f));
	f.function = "runtime/pprof.Do";
	f.function_len = strlen(f.function);
	cr_assert(gr_frame_shown(&f));
	f.function = "main.main.gowrap1";
	f.function_len = strlen(f.function);
	f.wrapper = true;
	cr_assert_not(gr_frame_shown(&f));
}
