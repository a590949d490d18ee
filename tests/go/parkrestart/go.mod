module goscope.test/parkrestart

go 1.19
