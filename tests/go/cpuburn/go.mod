module goscope.test/cpuburn

go 1.19
