module goscope.test/execself

go 1.19
