module goscope.test/pingpong

go 1.19
