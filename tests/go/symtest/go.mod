module goscope.test/symtest

go 1.19
