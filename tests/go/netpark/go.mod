module goscope.test/netpark

go 1.19
