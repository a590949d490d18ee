module goscope.test/pfrelay

go 1.19
