// pyrostand — a loopback stand-in for Grafana Pyroscope's push endpoint, for goscope's push
// tests (tests/integration/test_push.c). No Pyroscope server can be installed on the test
// machines, so this program implements the part of its contract goscope relies on, from
// Pyroscope's source (api/push/v1/push.proto, api/types/v1/types.proto,
// pkg/validation/validate.go and limits.go, the distributor's rate limiter):
//
//   - Connect unary call: POST /push.v1.PusherService/Push, Content-Type application/proto,
//     body a push.v1.PushRequest, decoded here by hand (standard library only);
//   - every series' labels validated as ValidateLabels does (at least one, at most 30, names
//     [a-zA-Z_][a-zA-Z0-9_.]*, values valid UTF-8 up to 2048 bytes, no duplicate names,
//     __name__ a valid metric name, service_name not empty);
//   - every RawSample's raw_profile gunzipped and decoded as profile.proto: at most 4 MiB
//     uncompressed and 16,000 samples, no sample type with '-', no location or function with
//     id 0; the profile type IDs Pyroscope derives (__name__:type:unit:period_type:period_unit)
//     must include the expected one for __name__ (process_cpu:cpu:nanoseconds:cpu:nanoseconds,
//     block:delay:nanoseconds:contentions:count);
//   - a request over the default ingestion burst (2 MiB of uncompressed profiles and label
//     bytes) is refused with 429, as the distributor's rate limiter does;
//   - errors as Connect's JSON ({"code": ..., "message": ...}) with the HTTP status of the
//     code, a refused request refused as a whole.
//
// Optional checks: -basic-auth USER:PASS and -tenant ID (401 when they do not match), and
// TLS with -tls-cert/-tls-key. Behaviour switched at run time by lines on stdin:
//
//	ok | fail STATUS [RETRY_AFTER] | hang | delay MS | reject-service NAME | accept-all
//
// (fail: every request answered STATUS; hang: requests are held until the client gives up;
// delay: a valid request is accepted after MS milliseconds unless the client went away;
// reject-service: a request with a series of that service_name is refused with 400). A
// request held by hang or delay is announced first by an "inflight" line with its IDs.
//
// What it received goes to -out as JSON lines: one "request" line per request (status,
// windows) and one "window" line per accepted RawSample (ID, labels, profile type IDs,
// samples, time). It prints "listening ADDR" on stdout once it accepts connections, then
// "ack N" after each command line N.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

const (
	maxLabelNames     = 30
	maxLabelNameLen   = 1024
	maxLabelValueLen  = 2048
	maxProfileSize    = 4 * 1024 * 1024
	maxProfileSamples = 16000
	burstBytes        = 2 * 1048576
	pushPath          = "/push.v1.PusherService/Push"
)

var expectedType = map[string]string{
	"process_cpu": "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
	"block":       "block:delay:nanoseconds:contentions:count",
	"memory":      "memory:inuse_space:bytes:space:bytes",
	"goroutines":  "goroutines:goroutine:count:goroutine:count",
}

type state struct {
	mu            sync.Mutex
	failStatus    int
	retryAfter    string
	hang          bool
	rejectService string
	delay         time.Duration
	out           *os.File
	basicAuth     string
	tenant        string
}

func (s *state) emit(v interface{}) {
	b, _ := json.Marshal(v)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.Write(append(b, '\n'))
}

// ---- protobuf wire reading ----

type field struct {
	num  int
	wire int
	v    uint64
	b    []byte
}

func fields(buf []byte) ([]field, error) {
	var out []field
	for len(buf) > 0 {
		key, n := uvarint(buf)
		if n <= 0 {
			return nil, errors.New("bad varint")
		}
		buf = buf[n:]
		f := field{num: int(key >> 3), wire: int(key & 7)}
		if f.num == 0 {
			return nil, errors.New("field 0")
		}
		switch f.wire {
		case 0:
			v, n := uvarint(buf)
			if n <= 0 {
				return nil, errors.New("bad varint")
			}
			f.v, buf = v, buf[n:]
		case 1:
			if len(buf) < 8 {
				return nil, errors.New("short i64")
			}
			buf = buf[8:]
		case 5:
			if len(buf) < 4 {
				return nil, errors.New("short i32")
			}
			buf = buf[4:]
		case 2:
			l, n := uvarint(buf)
			if n <= 0 || l > uint64(len(buf)-n) {
				return nil, errors.New("bad length")
			}
			f.b, buf = buf[n:n+int(l)], buf[n+int(l):]
		default:
			return nil, fmt.Errorf("wire type %d", f.wire)
		}
		out = append(out, f)
	}
	return out, nil
}

func uvarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < 10 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, -1
}

type labelPair struct{ Name, Value string }

type rawSample struct {
	profile []byte
	id      string
}

type series struct {
	labels  []labelPair
	samples []rawSample
}

func decodePush(body []byte) ([]series, error) {
	top, err := fields(body)
	if err != nil {
		return nil, err
	}
	var out []series
	for _, f := range top {
		if f.num != 1 || f.wire != 2 {
			return nil, fmt.Errorf("PushRequest: unexpected field %d", f.num)
		}
		sf, err := fields(f.b)
		if err != nil {
			return nil, err
		}
		var s series
		for _, g := range sf {
			switch {
			case g.num == 1 && g.wire == 2:
				lf, err := fields(g.b)
				if err != nil {
					return nil, err
				}
				var l labelPair
				for _, h := range lf {
					if h.wire != 2 {
						return nil, errors.New("LabelPair: not a string")
					}
					if h.num == 1 {
						l.Name = string(h.b)
					} else if h.num == 2 {
						l.Value = string(h.b)
					}
				}
				s.labels = append(s.labels, l)
			case g.num == 2 && g.wire == 2:
				rf, err := fields(g.b)
				if err != nil {
					return nil, err
				}
				var r rawSample
				for _, h := range rf {
					if h.wire != 2 {
						return nil, errors.New("RawSample: not bytes")
					}
					if h.num == 1 {
						r.profile = h.b
					} else if h.num == 2 {
						r.id = string(h.b)
					}
				}
				s.samples = append(s.samples, r)
			default:
				return nil, fmt.Errorf("RawProfileSeries: unexpected field %d", g.num)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

type profileInfo struct {
	sampleTypes [][2]string
	periodType  [2]string
	samples     int
	timeNanos   int64
	sums        []int64
}

func decodeProfile(raw []byte) (*profileInfo, int, error) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, 0, fmt.Errorf("not gzip: %v", err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, maxProfileSize+1))
	if err != nil {
		return nil, 0, fmt.Errorf("gunzip: %v", err)
	}
	if len(data) > maxProfileSize {
		return nil, len(data), fmt.Errorf("exceeds the size limit (max_profile_size_byte, limit: %d)", maxProfileSize)
	}
	top, err := fields(data)
	if err != nil {
		return nil, len(data), fmt.Errorf("profile.proto: %v", err)
	}
	var strs []string
	var vts [][2]uint64
	var period [2]uint64
	p := &profileInfo{}
	var sampleBodies [][]byte
	for _, f := range top {
		switch f.num {
		case 6:
			strs = append(strs, string(f.b))
		case 1:
			vf, err := fields(f.b)
			if err != nil {
				return nil, len(data), err
			}
			var vt [2]uint64
			for _, g := range vf {
				if g.num == 1 || g.num == 2 {
					vt[g.num-1] = g.v
				}
			}
			vts = append(vts, vt)
		case 11:
			vf, err := fields(f.b)
			if err != nil {
				return nil, len(data), err
			}
			for _, g := range vf {
				if g.num == 1 || g.num == 2 {
					period[g.num-1] = g.v
				}
			}
		case 2:
			p.samples++
			sampleBodies = append(sampleBodies, f.b)
		case 4, 5:
			vf, err := fields(f.b)
			if err != nil {
				return nil, len(data), err
			}
			var id uint64
			for _, g := range vf {
				if g.num == 1 && g.wire == 0 {
					id = g.v
				}
			}
			if id == 0 {
				return nil, len(data), errors.New("location or function id is 0")
			}
		case 9:
			p.timeNanos = int64(f.v)
		}
	}
	str := func(i uint64) (string, error) {
		if i >= uint64(len(strs)) {
			return "", errors.New("string index out of range")
		}
		return strs[i], nil
	}
	for _, vt := range vts {
		t, err1 := str(vt[0])
		u, err2 := str(vt[1])
		if err1 != nil || err2 != nil {
			return nil, len(data), errors.New("bad sample type")
		}
		if strings.Contains(t, "-") {
			return nil, len(data), errors.New("sample type contains -")
		}
		p.sampleTypes = append(p.sampleTypes, [2]string{t, u})
	}
	pt, err1 := str(period[0])
	pu, err2 := str(period[1])
	if err1 != nil || err2 != nil {
		return nil, len(data), errors.New("bad period type")
	}
	p.periodType = [2]string{pt, pu}
	if p.samples > maxProfileSamples {
		return nil, len(data), fmt.Errorf("exceeds the samples count limit (max_profile_stacktrace_samples, actual: %d, limit: %d)", p.samples, maxProfileSamples)
	}
	p.sums = make([]int64, len(vts))
	for _, sb := range sampleBodies {
		sf, err := fields(sb)
		if err != nil {
			return nil, len(data), err
		}
		var vals []int64
		for _, g := range sf {
			if g.num != 2 {
				continue
			}
			if g.wire == 0 {
				vals = append(vals, int64(g.v))
			} else if g.wire == 2 {
				b := g.b
				for len(b) > 0 {
					v, n := uvarint(b)
					if n <= 0 {
						return nil, len(data), errors.New("bad packed value")
					}
					vals = append(vals, int64(v))
					b = b[n:]
				}
			}
		}
		if len(vals) != len(vts) {
			return nil, len(data), errors.New("sample values do not match the sample types")
		}
		for i, v := range vals {
			p.sums[i] += v
		}
	}
	return p, len(data), nil
}

func validLabelName(n string) bool {
	if n == "" {
		return false
	}
	for i, c := range n {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(i > 0 && ((c >= '0' && c <= '9') || c == '.'))
		if !ok {
			return false
		}
	}
	return true
}

func validMetricName(n string) bool {
	if n == "" {
		return false
	}
	for i, c := range n {
		ok := c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

func validateLabels(ls []labelPair) (map[string]string, error) {
	if len(ls) == 0 {
		return nil, errors.New("error at least one label pair is required per profile")
	}
	if len(ls) > maxLabelNames {
		return nil, fmt.Errorf("profile series has %d label names; limit %d", len(ls), maxLabelNames)
	}
	m := map[string]string{}
	for _, l := range ls {
		if len(l.Name) > maxLabelNameLen {
			return nil, fmt.Errorf("label name too long: '%s'", l.Name)
		}
		if len(l.Value) > maxLabelValueLen {
			return nil, fmt.Errorf("label value too long: '%s'", l.Value)
		}
		if !validLabelName(l.Name) {
			return nil, fmt.Errorf("invalid label name '%s'", l.Name)
		}
		if !utf8.ValidString(l.Value) {
			return nil, fmt.Errorf("invalid label value '%s'", l.Value)
		}
		if _, dup := m[l.Name]; dup {
			return nil, fmt.Errorf("duplicate label name: '%s'", l.Name)
		}
		m[l.Name] = l.Value
	}
	if !validMetricName(m["__name__"]) {
		return nil, errors.New("invalid metric name")
	}
	if m["service_name"] == "" {
		return nil, errors.New("service name is not provided")
	}
	return m, nil
}

type connectErr struct {
	status int
	code   string
	msg    string
}

func fail(w http.ResponseWriter, e *connectErr) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{"code": e.code, "message": e.msg})
}

func (s *state) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	failStatus, retryAfter, hang, rejectService, delay := s.failStatus, s.retryAfter, s.hang, s.rejectService, s.delay
	s.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	rec := map[string]interface{}{"kind": "request", "bytes": len(body), "t_ms": time.Now().UnixMilli(),
		"tenant": r.Header.Get("X-Scope-OrgID"), "proto": r.Proto, "tls": r.TLS != nil,
		"extra": r.Header.Get("X-Goscope-Test")}
	answer := func(status int, e *connectErr, windows int) {
		rec["status"] = status
		rec["windows"] = windows
		if e != nil {
			rec["message"] = e.msg
		}
		s.emit(rec)
		if e != nil {
			fail(w, e)
		} else {
			w.Header().Set("Content-Type", "application/proto")
			w.WriteHeader(status) // an empty PushResponse
		}
	}
	if r.Method != http.MethodPost || r.URL.Path != pushPath {
		answer(404, &connectErr{404, "unimplemented", "no such procedure " + r.URL.Path}, 0)
		return
	}
	if err != nil {
		answer(400, &connectErr{400, "invalid_argument", "reading body: " + err.Error()}, 0)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/proto" {
		answer(415, &connectErr{415, "invalid_argument", "content type " + ct}, 0)
		return
	}
	if s.basicAuth != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(s.basicAuth))
		if r.Header.Get("Authorization") != want {
			answer(401, &connectErr{401, "unauthenticated", "bad credentials"}, 0)
			return
		}
	}
	if s.tenant != "" && r.Header.Get("X-Scope-OrgID") != s.tenant {
		answer(401, &connectErr{401, "unauthenticated", "no org id"}, 0)
		return
	}
	if failStatus != 0 {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		code := "unavailable"
		if failStatus == 429 {
			code = "resource_exhausted"
		}
		answer(failStatus, &connectErr{failStatus, code, "stand-in told to fail"}, 0)
		return
	}
	ss, err := decodePush(body)
	if err != nil {
		answer(400, &connectErr{400, "invalid_argument", "decoding PushRequest: " + err.Error()}, 0)
		return
	}
	var windows []map[string]interface{}
	total := 0
	for _, sr := range ss {
		m, err := validateLabels(sr.labels)
		if err != nil {
			answer(400, &connectErr{400, "invalid_argument", err.Error()}, 0)
			return
		}
		if rejectService != "" && m["service_name"] == rejectService {
			answer(400, &connectErr{400, "invalid_argument", "invalid labels: service " + rejectService + " refused by the stand-in"}, 0)
			return
		}
		for _, l := range sr.labels {
			total += len(l.Name) + len(l.Value)
		}
		names := make([]string, 0, len(sr.labels))
		for _, l := range sr.labels {
			names = append(names, l.Name)
		}
		for _, smp := range sr.samples {
			if smp.id == "" {
				answer(400, &connectErr{400, "invalid_argument", "sample without ID"}, 0)
				return
			}
			p, size, err := decodeProfile(smp.profile)
			total += size
			if err != nil {
				answer(400, &connectErr{400, "invalid_argument", err.Error()}, 0)
				return
			}
			var ids []string
			for _, st := range p.sampleTypes {
				ids = append(ids, m["__name__"]+":"+st[0]+":"+st[1]+":"+p.periodType[0]+":"+p.periodType[1])
			}
			want, known := expectedType[m["__name__"]]
			found := false
			for _, id := range ids {
				found = found || id == want
			}
			if !known || !found {
				answer(400, &connectErr{400, "invalid_argument", fmt.Sprintf("profile types %v lack %q", ids, want)}, 0)
				return
			}
			windows = append(windows, map[string]interface{}{
				"kind": "window", "id": smp.id, "labels": m, "label_order": names,
				"profile_types": ids, "samples": p.samples, "sums": p.sums,
				"time_nanos": p.timeNanos, "raw_bytes": size,
			})
		}
	}
	if hang || delay > 0 {
		// The IDs of the request held: a client killed meanwhile must send them again.
		var ids []string
		for _, win := range windows {
			ids = append(ids, win["id"].(string))
		}
		s.emit(map[string]interface{}{"kind": "inflight", "ids": ids, "t_ms": time.Now().UnixMilli()})
	}
	if hang {
		rec["hung"] = true
		select {
		case <-r.Context().Done():
		case <-time.After(120 * time.Second):
		}
		answer(503, &connectErr{503, "unavailable", "hung"}, 0)
		return
	}
	if delay > 0 {
		select {
		case <-r.Context().Done():
			rec["client_gone"] = true
			answer(503, &connectErr{503, "unavailable", "client gone"}, 0)
			return
		case <-time.After(delay):
		}
	}
	if total > burstBytes {
		answer(429, &connectErr{429, "resource_exhausted", fmt.Sprintf("push rate limit exceeded while adding %d bytes", total)}, 0)
		return
	}
	for _, win := range windows {
		s.emit(win)
	}
	answer(200, nil, len(windows))
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address")
	outPath := flag.String("out", "", "JSON lines of what was received")
	cert := flag.String("tls-cert", "", "TLS certificate (PEM)")
	key := flag.String("tls-key", "", "TLS key (PEM)")
	basic := flag.String("basic-auth", "", "required USER:PASS")
	tenant := flag.String("tenant", "", "required X-Scope-OrgID")
	flag.Parse()
	out, err := os.OpenFile(*outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := &state{out: out, basicAuth: *basic, tenant: *tenant}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// TLS handshakes refused by a client that does not trust the certificate are expected.
	srv := &http.Server{Handler: http.HandlerFunc(s.handle), ErrorLog: log.New(io.Discard, "", 0)}
	if *cert != "" {
		c, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{c}})
	}
	go srv.Serve(ln)
	fmt.Printf("listening %s\n", ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	n := 0
	for in.Scan() {
		f := strings.Fields(in.Text())
		n++
		if len(f) == 0 {
			continue
		}
		s.mu.Lock()
		switch f[0] {
		case "ok":
			s.failStatus, s.retryAfter, s.hang, s.delay = 0, "", false, 0
		case "delay":
			ms, _ := strconv.Atoi(f[1])
			s.delay = time.Duration(ms) * time.Millisecond
		case "fail":
			s.failStatus, _ = strconv.Atoi(f[1])
			s.retryAfter = ""
			if len(f) > 2 {
				s.retryAfter = f[2]
			}
		case "hang":
			s.hang = true
		case "reject-service":
			s.rejectService = f[1]
		case "accept-all":
			s.rejectService = ""
		}
		s.mu.Unlock()
		fmt.Printf("ack %d\n", n)
	}
}
