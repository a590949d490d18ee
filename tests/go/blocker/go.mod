module goscope.test/blocker

go 1.19
