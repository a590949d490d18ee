module goscope.test/idle

go 1.19
