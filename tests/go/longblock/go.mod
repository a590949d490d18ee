module goscope.test/longblock

go 1.19
