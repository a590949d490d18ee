module goscope.test/dlspin

go 1.19
