module goscope.test/execb

go 1.19
