#include "textflag.h"

// func requestPreempt()
// Sets the calling goroutine's g.stackguard0 to the runtime's stackPreempt
// (0xfffffffffffffade), as sysmon or the GC do to ask a running goroutine to
// yield: the next function prologue's stack check branches to morestack.
TEXT ·requestPreempt(SB),NOSPLIT,$0-0
	MOVQ	(TLS), AX
	MOVQ	$0xfffffffffffffade, BX
	MOVQ	BX, 16(AX) // g.stackguard0, after g.stack {lo, hi}
	RET
