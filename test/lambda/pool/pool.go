// Package pool runs functions in AWS's Lambda runtime interface emulator
// (cmd/aws-lambda-rie, built by scripts/lambda/setup.sh) behind a proxy that
// stands in for the Lambda service: the Lambda tier (make test-lambda) and
// the Lambda section of make bench use it.
//
// One emulator serves one invocation at a time (a second concurrent one
// crashes it) and answers only the function name "function". The proxy
// routes each Invoke, whatever function it names, to an idle emulator,
// answers 429 TooManyRequestsException when every emulator is busy (as
// Lambda does for a function at its reserved concurrency), and adds
// X-Amz-Function-Error where the emulator reports a function error only in
// the body. It is not a Lambda emulator of its own: no DryRun, no
// qualifiers, no asynchronous invocations.
//
// NewFleet is the same proxy with no emulator behind it: a stand-in for
// Lambda's fleet that costs this machine (almost) no CPU, for the bench's
// runs that measure the service's side of an event source mapping alone
// (see Counter).
package pool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is the stand-in for the Lambda service's Invoke in front of a set
// of backends: emulators (NewProxy) or Counter functions (NewFleet). Its
// counters are safe to read while it serves.
type Proxy struct {
	free chan Backend // idle backends
	n    int

	// Invoked counts the invocations a backend answered; Throttled
	// those answered 429 because every backend was busy; FunctionErrors
	// those whose answer was a function error. Records sums the records
	// the functions counted in their events: the "records" numbers of
	// the answers of test/lambda/gofn's FN_MODE=count, or a Counter's
	// counts.
	Invoked, Throttled, FunctionErrors, Records atomic.Int64
}

// Backend runs one invocation at a time: the proxy hands it an event only
// while it is idle.
type Backend interface {
	// Invoke runs the function on the event and returns its answer.
	Invoke(event []byte) (Answer, error)
}

// Answer is a backend's answer to one invocation: the HTTP status and the
// payload the proxy passes on, and the records the function counted in
// its event, if it said (Counted).
type Answer struct {
	Status  int
	Payload []byte
	Records int64
	Counted bool
}

// NewProxy returns a proxy routing to the emulators at the base URLs
// (http://host:port).
func NewProxy(urls ...string) *Proxy {
	// One request per emulator at a time, so the default two idle
	// connections per host are enough.
	client := &http.Client{}
	backends := make([]Backend, len(urls))
	for i, u := range urls {
		backends[i] = emulator{base: u, client: client}
	}
	return NewProxyTo(backends...)
}

// NewProxyTo returns a proxy routing each invocation to an idle one of
// the backends: len(backends) invocations at once, 429 beyond.
func NewProxyTo(backends ...Backend) *Proxy {
	p := &Proxy{free: make(chan Backend, len(backends)), n: len(backends)}
	for _, b := range backends {
		p.free <- b
	}
	return p
}

// NewFleet returns a proxy that answers every invocation itself, n at
// once (429 TooManyRequestsException beyond, as NewProxy with n
// emulators), each with a Counter that takes delay: Lambda's Invoke as
// the service sees it, with no runtime and no function process on this
// machine.
func NewFleet(n int, delay time.Duration) *Proxy {
	backends := make([]Backend, n)
	for i := range backends {
		backends[i] = Counter{Delay: delay}
	}
	return NewProxyTo(backends...)
}

// Counter is a function that costs (almost) no CPU: it waits Delay (the
// function's time), counts its event's records as test/lambda/gofn's
// FN_MODE=count does (the occurrences of "offset": in the payload: keys
// and values are base64, so only a header named offset could add one)
// and answers success, {"batchItemFailures":[]}. It is not a Lambda
// runtime: no runtime API, no execution environment, no decoding of the
// event; what a run against it measures is the caller's side (events
// built, invoked, answered, committed).
type Counter struct{ Delay time.Duration }

var (
	offsetField   = []byte(`"offset":`)
	noFailuresAns = []byte(`{"batchItemFailures":[]}`)
)

// Invoke implements Backend.
func (c Counter) Invoke(event []byte) (Answer, error) {
	time.Sleep(c.Delay)
	return Answer{Status: http.StatusOK, Payload: noFailuresAns, Records: int64(bytes.Count(event, offsetField)), Counted: true}, nil
}

// ServeHTTP answers the Lambda API's Invoke (POST
// /2015-03-31/functions/{name}/invocations) and nothing else.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/2015-03-31/functions/") || !strings.HasSuffix(r.URL.Path, "/invocations") {
		w.Header().Set("x-amzn-ErrorType", "ResourceNotFoundException")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	var b Backend
	select {
	case b = <-p.free:
	default:
		p.Throttled.Add(1)
		w.Header().Set("x-amzn-ErrorType", "TooManyRequestsException")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"Type":"User","message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}`)
		return
	}
	a, err := p.invoke(b, r.Body, r.ContentLength)
	if err != nil {
		w.Header().Set("x-amzn-ErrorType", "ServiceException")
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	p.Invoked.Add(1)
	if a.Counted {
		p.Records.Add(a.Records)
	}
	if isFunctionError(a.Payload) {
		p.FunctionErrors.Add(1)
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
	}
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	w.WriteHeader(a.Status)
	_, _ = w.Write(a.Payload)
}

// invoke hands the event in body to the idle backend b and returns its
// answer. The backend is idle again once it has answered, before the
// caller has the answer, so that the caller's next invocation finds it
// idle. The invocation does not take the caller's context: a caller that
// gives up (its timeout) never lets a second invocation reach a busy
// backend (an emulator crashes on one).
func (p *Proxy) invoke(b Backend, body io.Reader, size int64) (Answer, error) {
	defer func() { p.free <- b }()
	// The whole event first (a caller that gives up while sending it
	// reaches no backend), read into a buffer of its size at once.
	event := bytes.NewBuffer(make([]byte, 0, max(size, 0)+bytes.MinRead))
	if _, err := event.ReadFrom(body); err != nil {
		return Answer{}, err
	}
	return b.Invoke(event.Bytes())
}

// emulator is a Backend: one emulator, at its base URL.
type emulator struct {
	base   string
	client *http.Client
}

// Invoke posts the event to the emulator and returns its answer, with the
// records FN_MODE=count's function counted if its answer says.
func (e emulator) Invoke(event []byte) (Answer, error) {
	req, err := http.NewRequest(http.MethodPost, e.base+"/2015-03-31/functions/function/invocations", bytes.NewReader(event))
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return Answer{}, err
	}
	n, ok := answerRecords(data)
	return Answer{Status: resp.StatusCode, Payload: data, Records: n, Counted: ok}, nil
}

// isFunctionError reports whether an emulator's answer is the error
// document of a function that raised, returned an error or timed out
// ({"errorType": ..., "errorMessage": ...}), rather than the function's
// own result.
func isFunctionError(data []byte) bool {
	if !bytes.Contains(data, []byte(`"errorType"`)) {
		return false
	}
	var fe struct {
		ErrorType    *string `json:"errorType"`
		ErrorMessage *string `json:"errorMessage"`
	}
	return json.Unmarshal(data, &fe) == nil && fe.ErrorType != nil && fe.ErrorMessage != nil
}

// answerRecords returns the top-level "records" number of a function's
// answer, if it has one (FN_MODE=count's {"batchItemFailures":[],"records":N}).
func answerRecords(data []byte) (int64, bool) {
	if !bytes.Contains(data, []byte(`"records"`)) {
		return 0, false
	}
	var a struct {
		Records *int64 `json:"records"`
	}
	if json.Unmarshal(data, &a) != nil || a.Records == nil {
		return 0, false
	}
	return *a.Records, true
}

// WaitIdle waits until every backend is idle (the invocations still in
// flight have been answered), or ctx ends.
func (p *Proxy) WaitIdle(ctx context.Context) error {
	for len(p.free) < p.n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d backends still busy: %w", p.n-len(p.free), p.n, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// Options says what Start runs.
type Options struct {
	// RIE is the emulator binary (bin/aws-lambda-rie).
	RIE string
	// N is the number of emulators.
	N int
	// Dir is the functions' working directory; Env is added to this
	// process's environment.
	Dir string
	Env []string
	// Cmd is the function's runtime: a Go function's binary, or python
	// -m awslambdaric module.handler.
	Cmd []string
}

// Emulators are running emulator processes.
type Emulators struct {
	urls  []string
	procs []*exec.Cmd
	logs  []*lockedBuffer
	once  sync.Once
}

// Start starts o.N emulators, each on free ports of 127.0.0.1, and waits
// until each listens. On error it stops those it started.
func Start(o Options) (*Emulators, error) {
	if o.RIE == "" {
		return nil, errors.New("pool: no emulator binary (scripts/lambda/setup.sh builds bin/aws-lambda-rie)")
	}
	if o.N <= 0 || len(o.Cmd) == 0 {
		return nil, errors.New("pool: no emulators or no command")
	}
	addrs, err := freeAddrs(2 * o.N)
	if err != nil {
		return nil, err
	}
	e := &Emulators{}
	for i := range o.N {
		addr, api := addrs[2*i], addrs[2*i+1]
		c := exec.Command(o.RIE, append([]string{"--runtime-interface-emulator-address", addr, "--runtime-api-address", api}, o.Cmd...)...)
		c.Dir = o.Dir
		c.Env = append(os.Environ(), o.Env...)
		log := &lockedBuffer{}
		c.Stdout, c.Stderr = log, log
		if err := c.Start(); err != nil {
			e.Close()
			return nil, fmt.Errorf("pool: starting %s: %w", o.RIE, err)
		}
		e.procs, e.logs, e.urls = append(e.procs, c), append(e.logs, log), append(e.urls, "http://"+addr)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, u := range e.urls {
		addr := strings.TrimPrefix(u, "http://")
		for {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = conn.Close()
				break
			}
			if time.Now().After(deadline) {
				msg := e.Log(i, 2000)
				e.Close()
				return nil, fmt.Errorf("pool: emulator %d on %s did not listen within 30s:\n%s", i, addr, msg)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return e, nil
}

// URLs are the emulators' base URLs, for NewProxy.
func (e *Emulators) URLs() []string { return e.urls }

// Log is the last n bytes of emulator i's output (the emulator's and the
// function's).
func (e *Emulators) Log(i, n int) string {
	s := e.logs[i].String()
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Close kills the emulators and waits for them to exit; safe to call more
// than once.
func (e *Emulators) Close() {
	e.once.Do(func() {
		for _, c := range e.procs {
			_ = c.Process.Kill()
		}
		for _, c := range e.procs {
			_ = c.Wait()
		}
	})
}

// freeAddrs returns n distinct free TCP addresses of 127.0.0.1. Each
// listener stays open until all are chosen: closed at once, the kernel may
// hand the same port out twice, and two emulators (one's API, the other's
// invocations) would share it. Another process may still take one before
// an emulator listens on it.
func freeAddrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// lockedBuffer is an emulator's output, written by exec's copying goroutine
// and read by Log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
