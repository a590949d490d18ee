module goscope.test/pyrostand

go 1.19
