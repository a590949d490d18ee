module goscope.test/httpload

go 1.19
