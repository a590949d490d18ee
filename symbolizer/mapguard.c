/* mapguard.c — SIGBUS protection for the symbolizer's file mappings (see mapguard.h).
 *
 * The table is lock-free because the signal handler reads it: a slot is claimed with a
 * compare-and-swap, filled, then published (state LIVE, release); the handler only trusts
 * LIVE slots. A slot is unregistered before its range is unmapped, and a mapping is read only
 * by holders of its binary, so the handler never sees a slot whose range is being reused.
 *
 * A file modified in place (same size, new bytes) does not fault: reads of pages not yet
 * cached by this process see the new bytes. That needs no handler: every parser of the
 * image is bounds-checked (and fuzzed), so new bytes give an error or a wrong ("garbage")
 * frame, never a read outside the mapping. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mapguard.h"

enum { SLOT_FREE, SLOT_BUSY, SLOT_LIVE };

struct slot {
	_Atomic int state;
	_Atomic int changed;
	_Atomic uintptr_t start;
	_Atomic size_t len;
};

static struct slot slots[GS_MAPGUARD_SLOTS];
static _Atomic unsigned slots_used; /* high-water mark: the handler scans slots below it */
static struct sigaction prev_action;
static uintptr_t page_size;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_error;

/* Handles a SIGBUS that none of our mappings explain as the previous disposition would. */
static void chain(int sig, siginfo_t *info, void *uctx)
{
	void (*h)(int) = prev_action.sa_handler;

	if ((prev_action.sa_flags & SA_SIGINFO) && h != SIG_DFL && h != SIG_IGN) {
		prev_action.sa_sigaction(sig, info, uctx);
		return;
	}
	if (h != SIG_DFL && h != SIG_IGN) {
		h(sig);
		return;
	}
	if (h == SIG_IGN && info->si_code <= 0)
		return; /* sent by kill(): ignored as before */
	/* Default action: a fault re-executes the instruction and faults again with the
	 * default disposition (core dump); a signal sent by kill() is raised again, delivered
	 * once this handler returns. */
	signal(sig, SIG_DFL);
	if (info->si_code <= 0)
		raise(sig);
}

/* Async-signal-safe: atomics, mmap and the previous handler only. */
static void on_sigbus(int sig, siginfo_t *info, void *uctx)
{
	uintptr_t addr = (uintptr_t)info->si_addr;
	unsigned n = atomic_load_explicit(&slots_used, memory_order_acquire);
	int saved = errno;

	if (info->si_code > 0) { /* raised by the kernel for an access, not by kill() */
		for (unsigned i = 0; i < n && i < GS_MAPGUARD_SLOTS; i++) {
			struct slot *s = &slots[i];
			uintptr_t start, end, page;

			if (atomic_load_explicit(&s->state, memory_order_acquire) != SLOT_LIVE)
				continue;
			start = atomic_load_explicit(&s->start, memory_order_relaxed);
			end = start + atomic_load_explicit(&s->len, memory_order_relaxed);
			if (addr < start || addr >= end)
				continue;
			/* Zero pages from the faulting one to the end of the mapping: the rest
			 * of a truncated file would fault page by page otherwise. */
			page = addr & ~(page_size - 1);
			if (mmap((void *)page, end - page, PROT_READ,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
				break; /* cannot repair: behave as without us */
			atomic_store_explicit(&s->changed, 1, memory_order_release);
			errno = saved;
			return;
		}
	}
	errno = saved;
	chain(sig, info, uctx);
}

static void install(void)
{
	struct sigaction sa;

	page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &prev_action) < 0)
		install_error = -errno;
}

int gs_mapguard_add(const void *addr, size_t len)
{
	pthread_once(&install_once, install);
	if (install_error)
		return install_error;
	for (unsigned i = 0; i < GS_MAPGUARD_SLOTS; i++) {
		struct slot *s = &slots[i];
		int expected = SLOT_FREE;
		unsigned used;

		if (!atomic_compare_exchange_strong(&s->state, &expected, SLOT_BUSY))
			continue;
		atomic_store_explicit(&s->start, (uintptr_t)addr, memory_order_relaxed);
		atomic_store_explicit(&s->len, (len + page_size - 1) & ~(page_size - 1),
				      memory_order_relaxed);
		atomic_store_explicit(&s->changed, 0, memory_order_relaxed);
		used = atomic_load(&slots_used);
		while (used < i + 1 && !atomic_compare_exchange_weak(&slots_used, &used, i + 1))
			;
		atomic_store_explicit(&s->state, SLOT_LIVE, memory_order_release);
		return (int)i + 1;
	}
	return -ENOSPC;
}

void gs_mapguard_remove(int handle)
{
	if (handle <= 0 || handle > GS_MAPGUARD_SLOTS)
		return;
	atomic_store_explicit(&slots[handle - 1].state, SLOT_FREE, memory_order_release);
}

bool gs_mapguard_changed(int handle)
{
	if (handle <= 0 || handle > GS_MAPGUARD_SLOTS)
		return false;
	return atomic_load_explicit(&slots[handle - 1].changed, memory_order_acquire) != 0;
}
