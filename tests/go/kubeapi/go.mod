module goscope.test/kubeapi

go 1.19
