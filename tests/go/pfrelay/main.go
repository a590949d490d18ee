// pfrelay: the port-forward of the stand-in kubectl (tests/kubectl/kubectl) used by the test of
// the `kubectl goscope` plugin. No Kubernetes can run here, so `kubectl port-forward
// pod/AGENT :6061` is played by this relay: it listens on a free port of 127.0.0.1, prints
// what kubectl prints ("Forwarding from 127.0.0.1:PORT -> 6061"), and relays every connection
// to a real local goscope agent's API (-to). The first line of each request (method, path and
// query) is appended to -log, so the test can check what the plugin asked for.
//
// Runs until SIGTERM/SIGINT, as kubectl port-forward does.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
)

func main() {
	to := flag.String("to", "", "address of the real agent's API (HOST:PORT)")
	remote := flag.String("remote-port", "6061", "the pod port kubectl would print")
	logPath := flag.String("log", "", "append each request's first line here")
	flag.Parse()
	if *to == "" {
		fmt.Fprintln(os.Stderr, "pfrelay: -to is required")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pfrelay:", err)
		os.Exit(1)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	fmt.Printf("Forwarding from 127.0.0.1:%d -> %s\n", port, *remote)
	var logMu sync.Mutex
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		fmt.Printf("Handling connection for %s\n", *remote)
		go relay(c, *to, *logPath, &logMu)
	}
}

// relay copies one connection both ways, recording the request's first line.
func relay(c net.Conn, to, logPath string, mu *sync.Mutex) {
	defer c.Close()
	up, err := net.Dial("tcp", to)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pfrelay: dial", to, err)
		return
	}
	defer up.Close()
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return
	}
	if logPath != "" {
		mu.Lock()
		if f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(f, strings.TrimRight(line, "\r\n"))
			f.Close()
		}
		mu.Unlock()
	}
	if _, err := io.WriteString(up, line); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, br); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	<-done
}
