// netpark: a TCP ping-pong with no delay between two goroutines of this
// process (main.client reads the reply of every 1-byte request), so reads
// often find their data arriving while the reader parks: the network poller's
// commit (netpollblockcommit) then cancels the park. Used to check that
// cancelled parks are not counted as blocks.
//
// -wait: after "ready <pid>", wait for a line on stdin before starting.
// Output at the end: "reads <n>" (client reads), then "done".
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

//go:noinline
func client(conn net.Conn, until time.Time) int64 {
	var n int64
	buf := []byte{'x'}
	for time.Now().Before(until) {
		if _, err := conn.Write(buf); err != nil {
			break
		}
		if _, err := conn.Read(buf); err != nil {
			break
		}
		n++
	}
	return n
}

//go:noinline
func server(c net.Conn) {
	buf := make([]byte, 1)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

func main() {
	duration := flag.Duration("duration", 2*time.Second, "how long to run")
	wait := flag.Bool("wait", false, "wait for a line on stdin before starting")
	flag.Parse()
	runCgoHook()
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "ready %d\n", os.Getpid())
	w.Flush()
	if *wait {
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			server(c)
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	n := client(conn, time.Now().Add(*duration))
	conn.Close()
	fmt.Fprintf(w, "reads %d\ndone\n", n)
	w.Flush()
}
