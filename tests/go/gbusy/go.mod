module goscope.test/gbusy

go 1.19
