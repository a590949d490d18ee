module goscope.test/gdump

go 1.19
