module goscope.test/labels

go 1.19
