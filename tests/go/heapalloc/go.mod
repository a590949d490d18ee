module goscope.test/heapalloc

go 1.19
