/* leaf.c — leaf-frame repair of frame-pointer stacks (see leaf.h for why and how). */
#include <string.h>

#include "stacks/leaf.h"

size_t stacks_leaf_repair(struct gs_process *proc, const struct leaf_regs *r, uint64_t *user,
			  size_t n, size_t max, enum leaf_result *res)
{
	struct gs_location loc;
	int32_t d;

	*res = LEAF_UNCHANGED;
	if (!proc || n == 0 || max < 2 || gs_process_locate(proc, r->ip, &loc) < 0 || !loc.binary ||
	    gs_binary_pcsp(loc.binary, loc.file_addr, &d) < 0 || d < 0)
		return n;
	if (r->bp == r->sp + (uint64_t)d - 8)
		return n; /* frame set up: the FP walk is right */
	if ((d & 7) || (uint64_t)d / 8 >= r->window_words) {
		*res = LEAF_UNRECOVERED;
		return n;
	}
	/* Room for the inserted frame: the outermost frame is dropped when the stack is full. */
	if (n >= max)
		n = max - 1;
	memmove(&user[2], &user[1], (n - 1) * sizeof(*user));
	user[1] = r->window[d / 8];
	*res = LEAF_FIXED;
	return n + 1;
}
