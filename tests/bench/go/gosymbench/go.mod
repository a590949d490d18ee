module goscope.bench/gosymbench

go 1.19
