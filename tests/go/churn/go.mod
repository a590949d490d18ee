module goscope.test/churn

go 1.19
