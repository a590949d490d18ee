/* leaf.h — leaf-frame repair of a frame-pointer stack walk: puts back the direct caller of
 * the sampled function when that function's frame was not set up when the sample was taken.
 *
 * Why: a frame-pointer walk reads the return address at [BP + 8]. When the sampled function
 * has not set up its frame (a frameless leaf, or a PC in a prologue or epilogue), BP still
 * belongs to its caller, so the walk starts at the caller's caller and the direct caller is
 * missing from the stack. The pclntab's pcsp table gives the SP delta d at the PC (the bytes
 * the function has pushed below its entry SP at that instruction); the frame is set up iff
 * BP == SP + d - 8, and otherwise the return address is the word at [SP + d], which the BPF
 * program copied from the top of the stack (the "stack window"). */
#ifndef GOSCOPE_AGENT_STACKS_LEAF_H
#define GOSCOPE_AGENT_STACKS_LEAF_H

#include <stddef.h>
#include <stdint.h>

#include "goscope/symbolizer.h"

/* The registers at the sample and the words copied at SP. */
struct leaf_regs {
	uint64_t ip, sp, bp;
	const uint64_t *window; /* window[i] = the word at SP + 8*i */
	size_t window_words;	/* how many of them could be read (0: none) */
};

enum leaf_result {
	LEAF_UNCHANGED,	  /* frame set up, or nothing known about the PC: the walk is right */
	LEAF_FIXED,	  /* the direct caller was inserted at user[1] */
	LEAF_UNRECOVERED, /* frame not set up, but [SP + d] is not in the window */
};

/* Repairs user[0..n) (user[0] is the leaf PC == r->ip, then return addresses) in place and
 * returns the new frame count (at most max; user has room for max entries). proc may be
 * NULL (nothing is known: unchanged). */
size_t stacks_leaf_repair(struct gs_process *proc, const struct leaf_regs *r, uint64_t *user,
			  size_t n, size_t max, enum leaf_result *res);

#endif
