module goscope.test/execa

go 1.19
