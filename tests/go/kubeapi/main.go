// kubeapi: a stand-in for the Kubernetes API server, for goscope's tests. No Kubernetes can run
// on the test machine (no kubelet, no etcd, no network to fetch one), so the agent's metadata
// client (agent/kube/) is tested against this: the part of the API it uses, over HTTPS, with
// the real API's JSON shapes (PodList, watch events, Status; see the Kubernetes API reference,
// "Pod v1 core" and "Efficient detection of changes"), and recorded pod objects from
// testdata/.
//
// What it serves:
//
//	GET /api/v1/pods?fieldSelector=spec.nodeName%3DNODE          a PodList and its resourceVersion
//	GET /api/v1/pods?fieldSelector=...&watch=1&resourceVersion=RV  newline-delimited watch events
//	  after RV (replayed from its event log, then live); an RV older than the last compaction
//	  gets an ERROR event with a 410 Status, as the real server answers "too old resource
//	  version".
//
// Every request must carry "Authorization: Bearer TOKEN" with the token currently accepted
// (401 Status otherwise), so the client's token rotation is checked. TLS uses a CA made here at
// start (-ca-out writes its PEM: the client verifies the server with it).
//
// Driven by the test on stdin, one command a line, each answered by one "ok ..." line:
//
//	add FILE / modify FILE     a pod from a JSON file: stored, ADDED / MODIFIED sent to watchers
//	addquiet FILE              stored without an event (learnt only by a re-list)
//	delete NAMESPACE NAME      removed, DELETED sent
//	gone                       compaction: every open watch gets 410 Gone and ends
//	bookmark                   a BOOKMARK event to every watcher
//	token TOKEN                only TOKEN is accepted from now on; open watches end
//	down / up                  stop listening and cut every connection / listen again (same port)
//	stats                      "ok lists=N watches=N unauthorized=N tokens=T1,T2"
//
// Prints "listening PORT" once it serves.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

type event struct {
	rv   int64
	typ  string
	obj  map[string]any
	node string
}

type server struct {
	mu        sync.Mutex
	rv        int64
	compacted int64
	pods      map[string]map[string]any // namespace/name -> pod
	log       []event
	changed   chan struct{} // closed and replaced on every change
	token     string
	cut       chan struct{} // closed to end every open watch (token change, down)

	lists, watches, unauthorized int
	tokens                       map[string]bool
}

func podKey(p map[string]any) (key, node string) {
	md, _ := p["metadata"].(map[string]any)
	spec, _ := p["spec"].(map[string]any)
	ns, _ := md["namespace"].(string)
	name, _ := md["name"].(string)
	node, _ = spec["nodeName"].(string)
	return ns + "/" + name, node
}

func setRV(p map[string]any, rv int64) {
	md, _ := p["metadata"].(map[string]any)
	md["resourceVersion"] = strconv.FormatInt(rv, 10)
}

// notify wakes every watcher; s.mu held.
func (s *server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *server) record(typ string, p map[string]any) {
	s.rv++
	setRV(p, s.rv)
	_, node := podKey(p)
	obj := map[string]any{"kind": "Pod", "apiVersion": "v1"}
	for k, v := range p {
		obj[k] = v
	}
	s.log = append(s.log, event{rv: s.rv, typ: typ, obj: obj, node: node})
	s.notify()
}

func status(code int, reason, msg string) map[string]any {
	return map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": msg, "reason": reason, "code": code}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// selector returns the node of "spec.nodeName=NODE" ("" with no selector); ok false for any
// other selector (the real server would filter on it; the client never sends one).
func selector(r *http.Request) (node string, ok bool) {
	fs := r.URL.Query().Get("fieldSelector")
	if fs == "" {
		return "", true
	}
	if !strings.HasPrefix(fs, "spec.nodeName=") {
		return "", false
	}
	return strings.TrimPrefix(fs, "spec.nodeName="), true
}

func (s *server) servePods(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	auth := r.Header.Get("Authorization")
	if tok := strings.TrimPrefix(auth, "Bearer "); tok != "" {
		s.tokens[tok] = true
	}
	if auth != "Bearer "+s.token {
		s.unauthorized++
		s.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, status(401, "Unauthorized", "Unauthorized"))
		return
	}
	s.mu.Unlock()
	node, ok := selector(r)
	if !ok {
		writeJSON(w, http.StatusBadRequest, status(400, "BadRequest", "unsupported field selector"))
		return
	}
	if r.URL.Query().Get("watch") == "1" || r.URL.Query().Get("watch") == "true" {
		s.watch(w, r, node)
		return
	}
	s.mu.Lock()
	s.lists++
	keys := make([]string, 0, len(s.pods))
	for k := range s.pods {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	items := []any{}
	for _, k := range keys {
		if _, n := podKey(s.pods[k]); node == "" || n == node {
			items = append(items, s.pods[k])
		}
	}
	list := map[string]any{"kind": "PodList", "apiVersion": "v1",
		"metadata": map[string]any{"resourceVersion": strconv.FormatInt(s.rv, 10)},
		"items":    items}
	body, _ := json.Marshal(list)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

func (s *server) watch(w http.ResponseWriter, r *http.Request, node string) {
	fl, _ := w.(http.Flusher)
	last, err := strconv.ParseInt(r.URL.Query().Get("resourceVersion"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, status(400, "BadRequest", "resourceVersion"))
		return
	}
	timeout := 300 * time.Second
	if t, err := strconv.Atoi(r.URL.Query().Get("timeoutSeconds")); err == nil && t > 0 {
		timeout = time.Duration(t) * time.Second
	}
	end := time.After(timeout)
	s.mu.Lock()
	s.watches++
	cut := s.cut
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for {
		s.mu.Lock()
		if last < s.compacted {
			s.mu.Unlock()
			enc.Encode(map[string]any{"type": "ERROR", "object": status(410, "Expired",
				fmt.Sprintf("too old resource version: %d (%d)", last, s.compacted))})
			return
		}
		var out []event
		for _, e := range s.log {
			if e.rv > last && (node == "" || e.node == node || e.typ == "BOOKMARK") {
				out = append(out, e)
			}
		}
		if n := len(s.log); n > 0 && s.log[n-1].rv > last {
			last = s.log[n-1].rv
		}
		changed := s.changed
		s.mu.Unlock()
		for _, e := range out {
			if enc.Encode(map[string]any{"type": e.typ, "object": e.obj}) != nil {
				return
			}
		}
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-changed:
		case <-cut:
			return
		case <-end:
			return
		case <-r.Context().Done():
			return
		}
	}
}

type listener struct {
	srv  *http.Server
	port int
}

func (s *server) listen(cert tls.Certificate, port int) (*listener, error) {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/pods", s.servePods)
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		ErrorLog: log.New(io.Discard, "", 0)}
	go srv.ServeTLS(ln, "", "")
	return &listener{srv: srv, port: ln.Addr().(*net.TCPAddr).Port}, nil
}

// makeCert makes a CA and a server certificate for 127.0.0.1 signed by it; the CA's PEM goes
// to caOut.
func makeCert(caOut string) (tls.Certificate, error) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1),
		Subject:   pkix.Name{CommonName: "goscope-test-kubernetes-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject:   pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	pemCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if err := os.WriteFile(caOut, pemCA, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func readPod(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p map[string]any
	return p, json.Unmarshal(b, &p)
}

func main() {
	caOut := flag.String("ca-out", "", "write the CA certificate (PEM) here")
	token := flag.String("token", "", "the bearer token accepted at first")
	list := flag.String("pods", "", "a recorded PodList (JSON) the server starts with")
	flag.Parse()
	s := &server{pods: map[string]map[string]any{}, changed: make(chan struct{}),
		token: *token, cut: make(chan struct{}), tokens: map[string]bool{}, rv: 1000}
	if *list != "" {
		b, err := os.ReadFile(*list)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		var pl struct {
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal(b, &pl); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, p := range pl.Items {
			s.rv++
			setRV(p, s.rv)
			k, _ := podKey(p)
			s.pods[k] = p
		}
	}
	cert, err := makeCert(*caOut)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	l, err := s.listen(cert, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	port := l.port
	fmt.Printf("listening %d\n", port)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		reply := "ok"
		s.mu.Lock()
		switch f[0] {
		case "add", "modify", "addquiet":
			p, err := readPod(f[1])
			if err != nil {
				reply = "error " + err.Error()
				break
			}
			k, _ := podKey(p)
			s.pods[k] = p
			if f[0] == "addquiet" {
				s.rv++
				setRV(p, s.rv)
			} else if f[0] == "add" {
				s.record("ADDED", p)
			} else {
				s.record("MODIFIED", p)
			}
		case "delete":
			k := f[1] + "/" + f[2]
			if p, ok := s.pods[k]; ok {
				delete(s.pods, k)
				s.record("DELETED", p)
			} else {
				reply = "error no such pod"
			}
		case "gone":
			s.rv++
			s.compacted = s.rv
			s.notify()
		case "bookmark":
			s.rv++
			s.log = append(s.log, event{rv: s.rv, typ: "BOOKMARK", obj: map[string]any{
				"kind": "Pod", "apiVersion": "v1", "metadata": map[string]any{
					"resourceVersion": strconv.FormatInt(s.rv, 10)}}})
			s.notify()
		case "token":
			s.token = f[1]
			close(s.cut)
			s.cut = make(chan struct{})
		case "down":
			close(s.cut)
			s.cut = make(chan struct{})
			s.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			l.srv.Shutdown(ctx)
			cancel()
			l.srv.Close()
			s.mu.Lock()
		case "up":
			s.mu.Unlock()
			var err error
			for i := 0; i < 50; i++ {
				if l, err = s.listen(cert, port); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			s.mu.Lock()
			if err != nil {
				reply = "error " + err.Error()
			}
		case "stats":
			toks := make([]string, 0, len(s.tokens))
			for t := range s.tokens {
				toks = append(toks, t)
			}
			sort.Strings(toks)
			reply = fmt.Sprintf("ok lists=%d watches=%d unauthorized=%d tokens=%s", s.lists,
				s.watches, s.unauthorized, strings.Join(toks, ","))
		default:
			reply = "error unknown command"
		}
		s.mu.Unlock()
		fmt.Println(reply)
	}
}
