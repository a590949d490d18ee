// churn: the programs of a process-churn test (tests/integration/test_cpu_hardening.c,
// tests/bench/churn_rss.sh). -mode busy: burns about -duty of one CPU (in main.busyWork)
// until -duration passes. -mode short: starts, burns a little in main.shortWork (runtime
// start-up, a few functions sampled) and exits after -duration.
package main

import (
	"flag"
	"os"
	"time"
)

var sink uint64

//go:noinline
func spin(d time.Duration) {
	end := time.Now().Add(d)
	x := sink
	for time.Now().Before(end) {
		for i := 0; i < 10000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	sink = x
}

//go:noinline
func busyWork(d time.Duration) { spin(d) }

//go:noinline
func shortWork(d time.Duration) { spin(d) }

func main() {
	mode := flag.String("mode", "busy", "busy or short")
	duration := flag.Duration("duration", time.Second, "how long to run")
	duty := flag.Float64("duty", 0.1, "busy: fraction of one CPU")
	burn := flag.Duration("burn", 50*time.Millisecond, "short: CPU burnt before idling")
	flag.Parse()
	end := time.Now().Add(*duration)
	switch *mode {
	case "busy":
		const period = 20 * time.Millisecond
		on := time.Duration(float64(period) * *duty)
		for time.Now().Before(end) {
			busyWork(on)
			time.Sleep(period - on)
		}
	case "short":
		shortWork(*burn)
		time.Sleep(time.Until(end))
	default:
		os.Exit(2)
	}
}
