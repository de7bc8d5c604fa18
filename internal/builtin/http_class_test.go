package builtin

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
)

// class is what a Handle error means to the caller, as the operator
// contract names it.
type class string

const (
	classOK          class = "ok"
	classPartial     class = "partial"
	classFailed      class = "batch failed"
	classRejected    class = "rejected"
	classUnavailable class = "unavailable"
	classAmbiguous   class = "unavailable and something else"
)

// classOf is the class handler.Classify, the service's one classifier, gives
// err, in the names of the operator contract. An error that is unavailable
// and something else besides is reported as ambiguous: Classify takes it as
// unavailable, but the handlers under test never return one.
func classOf(err error) class {
	cls, _ := handler.Classify(err)
	var items *handler.ItemFailures
	if cls == handler.ClassUnavailable && (errors.As(err, &items) || errors.Is(err, handler.ErrPermanent)) {
		return classAmbiguous
	}
	return map[handler.Class]class{
		handler.ClassOK:          classOK,
		handler.ClassItems:       classPartial,
		handler.ClassUnavailable: classUnavailable,
		handler.ClassRejected:    classRejected,
		handler.ClassFailed:      classFailed,
	}[cls]
}

// rawServer answers every request with the same bytes written on the
// connection, for responses that net/http's server cannot make. With hold
// it keeps the connection open until the test ends, or at most 10s so that
// a client stuck reading it fails the test rather than hanging it; else it
// closes the connection.
type rawServer struct {
	URL  string
	mu   sync.Mutex
	reqs int
}

func newRawServer(t *testing.T, response string, hold bool) *rawServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{URL: "http://" + l.Addr().String() + "/"}
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(done)
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return // closed by the cleanup
			}
			wg.Go(func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				s.mu.Lock()
				s.reqs++
				s.mu.Unlock()
				_, _ = io.WriteString(c, response)
				if hold {
					select {
					case <-done:
					case <-time.After(10 * time.Second):
					}
				}
			})
		}
	})
	return s
}

func (s *rawServer) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs
}

func reply(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// TestHTTPResponses checks the class of every kind of response, through a
// real HTTP exchange.
func TestHTTPResponses(t *testing.T) {
	tests := []struct {
		name        string
		reply       http.HandlerFunc // or
		raw         string           // written as the response, on the connection
		hold        bool             // with raw: keep the connection open
		want        class
		wantOffsets []int64 // with classPartial
		wantStatus  int     // with a *StatusError
		wantInvalid bool    // wraps ErrInvalidResponse, and is logged
		wantText    string  // in the error
		notText     string  // not in the error
	}{
		// 2xx: success, partial failure, or a response that cannot be
		// understood (the batch failed).
		{name: "200 empty", reply: reply(200, ""), want: classOK},
		{name: "200 whitespace", reply: reply(200, " \r\n"), want: classOK},
		{name: "200 {}", reply: reply(200, "{}"), want: classOK},
		{name: "200 null", reply: reply(200, "null"), want: classOK},
		{name: "200 other fields", reply: reply(200, `{"status":"ok"}`), want: classOK},
		{name: "200 empty failures", reply: reply(200, `{"batchItemFailures":[]}`), want: classOK},
		{name: "200 null failures", reply: reply(200, `{"batchItemFailures":null}`), want: classOK},
		{name: "201", reply: reply(201, "{}"), want: classOK},
		{name: "202 empty", reply: reply(202, ""), want: classOK},
		{name: "204", reply: reply(204, ""), want: classOK},
		{name: "299", reply: reply(299, ""), want: classOK},
		{
			name:        "200 failures",
			reply:       reply(200, `{"batchItemFailures":[{"itemIdentifier":"15"},{"itemIdentifier":"10"},{"itemIdentifier":"15"}]}`),
			want:        classPartial,
			wantOffsets: []int64{10, 15},
		},
		{
			name:        "200 every record failed",
			reply:       reply(200, `{"batchItemFailures":[{"itemIdentifier":"10"},{"itemIdentifier":"11"},{"itemIdentifier":"12"},{"itemIdentifier":"13"},{"itemIdentifier":"15"}]}`),
			want:        classPartial,
			wantOffsets: []int64{10, 11, 12, 13, 15},
		},
		{name: "200 unknown identifier", reply: reply(200, `{"batchItemFailures":[{"itemIdentifier":"10"},{"itemIdentifier":"14"}]}`), want: classFailed, wantInvalid: true, wantText: "not an offset of this batch"},
		{name: "200 empty identifier", reply: reply(200, `{"batchItemFailures":[{"itemIdentifier":""}]}`), want: classFailed, wantInvalid: true, wantText: "is empty"},
		{name: "200 null identifier", reply: reply(200, `{"batchItemFailures":[{"itemIdentifier":null}]}`), want: classFailed, wantInvalid: true, wantText: "is null"},
		{name: "200 missing identifier", reply: reply(200, `{"batchItemFailures":[{"id":"10"}]}`), want: classFailed, wantInvalid: true, wantText: "is missing"},
		{name: "200 number identifier", reply: reply(200, `{"batchItemFailures":[{"itemIdentifier":10}]}`), want: classFailed, wantInvalid: true, wantText: "not a string"},
		{name: "200 non-decimal identifier", reply: reply(200, `{"batchItemFailures":[{"itemIdentifier":"0x0a"}]}`), want: classFailed, wantInvalid: true, wantText: "not a decimal"},
		{name: "200 negative identifier", reply: reply(200, `{"batchItemFailures":[{"itemIdentifier":"-10"}]}`), want: classFailed, wantInvalid: true, wantText: "not a decimal"},
		{name: "200 failures not an array", reply: reply(200, `{"batchItemFailures":{"itemIdentifier":"10"}}`), want: classFailed, wantInvalid: true},
		{name: "200 non-JSON", reply: reply(200, "OK"), want: classFailed, wantInvalid: true, wantText: "not JSON"},
		{name: "200 JSON array", reply: reply(200, "[]"), want: classFailed, wantInvalid: true, wantText: "not a JSON object"},
		{name: "200 over 1 MiB", reply: reply(200, `{"pad":"`+strings.Repeat("x", 1<<20)+`"}`), want: classFailed, wantInvalid: true, wantText: "longer than 1 MiB"},
		{name: "200 body cut short", raw: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"batchItem", want: classUnavailable, wantText: "status 200, reading the response: unexpected EOF"},

		// 1xx: only 101 is final; the service is misbehaving.
		{name: "101", reply: reply(101, ""), want: classUnavailable, wantStatus: 101, wantText: "101 Switching Protocols"},
		{
			name: "101 handing over the connection", raw: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\nstream bytes", hold: true,
			want: classUnavailable, wantStatus: 101, notText: "stream bytes",
		},

		// 3xx: never followed.
		{name: "300", reply: reply(300, "choose"), want: classUnavailable, wantStatus: 300},
		{name: "301", reply: reply(301, "", "Location", "https://hooks.example.com/products"), want: classUnavailable, wantStatus: 301, wantText: "status 301 Moved Permanently: redirect to https://hooks.example.com/products not followed"},
		{name: "302 relative", reply: reply(302, "", "Location", "/elsewhere"), want: classUnavailable, wantStatus: 302, wantText: "/elsewhere not followed"},
		{name: "303", reply: reply(303, "", "Location", "/elsewhere"), want: classUnavailable, wantStatus: 303},
		{name: "304", reply: reply(304, ""), want: classUnavailable, wantStatus: 304},
		{name: "307 with credentials", reply: reply(307, "", "Location", "https://u:pa55word@other.example/x?token=query-secret#f"), want: classUnavailable, wantStatus: 307, wantText: "redirect to https://u:xxxxx@other.example/x?token=REDACTED#REDACTED not followed"},
		{name: "308", reply: reply(308, "", "Location", "/elsewhere"), want: classUnavailable, wantStatus: 308},

		// 4xx: rejected, except those that say the service cannot take
		// any batch.
		{name: "400", reply: reply(400, `{"message":"bad product"}`), want: classRejected, wantStatus: 400, wantText: `400 Bad Request: {"message":"bad product"}`},
		{name: "401", reply: reply(401, ""), want: classUnavailable, wantStatus: 401},
		{name: "402", reply: reply(402, ""), want: classRejected, wantStatus: 402},
		{name: "403", reply: reply(403, "forbidden"), want: classUnavailable, wantStatus: 403},
		{name: "404", reply: reply(404, "404 page not found\n"), want: classUnavailable, wantStatus: 404, wantText: "404 page not found"},
		{name: "405", reply: reply(405, ""), want: classUnavailable, wantStatus: 405},
		{name: "406", reply: reply(406, ""), want: classRejected, wantStatus: 406},
		{name: "407", reply: reply(407, ""), want: classUnavailable, wantStatus: 407},
		{name: "408", reply: reply(408, ""), want: classUnavailable, wantStatus: 408},
		{name: "409", reply: reply(409, ""), want: classRejected, wantStatus: 409},
		{name: "410", reply: reply(410, ""), want: classRejected, wantStatus: 410},
		{name: "413", reply: reply(413, "<html>\n<body>too large</body>\n</html>"), want: classRejected, wantStatus: 413, wantText: "413 Request Entity Too Large: the request body of "},
		{name: "415", reply: reply(415, ""), want: classRejected, wantStatus: 415},
		{name: "422", reply: reply(422, `{"error":"price"}`), want: classRejected, wantStatus: 422, wantText: `{"error":"price"}`},
		{name: "429", reply: reply(429, "slow down"), want: classUnavailable, wantStatus: 429, wantText: "slow down"},
		{name: "451", reply: reply(451, ""), want: classRejected, wantStatus: 451},
		{name: "499", reply: reply(499, ""), want: classRejected, wantStatus: 499},
		{name: "400 echoing the credentials", reply: reply(400, "rejected Authorization: "+testAuth), want: classRejected, wantStatus: 400, wantText: "rejected Authorization: [REDACTED]"},
		{name: "400 echoing the token", reply: reply(400, "bad token s3cr3t-t0ken-value"), want: classRejected, wantStatus: 400, wantText: "bad token [REDACTED]"},

		// 5xx: the batch failed, except a gateway with nothing behind it.
		{name: "500", reply: reply(500, "boom"), want: classFailed, wantStatus: 500, wantText: "500 Internal Server Error: boom"},
		{name: "500 body cut short", raw: "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100\r\n\r\nboom", want: classFailed, wantStatus: 500, wantText: "boom"},
		{name: "501", reply: reply(501, ""), want: classFailed, wantStatus: 501},
		{name: "502", reply: reply(502, ""), want: classUnavailable, wantStatus: 502},
		{name: "503", reply: reply(503, ""), want: classUnavailable, wantStatus: 503, wantText: "503 Service Unavailable"},
		{name: "504", reply: reply(504, ""), want: classUnavailable, wantStatus: 504},
		{name: "505", reply: reply(505, ""), want: classFailed, wantStatus: 505},
		{name: "507", reply: reply(507, ""), want: classFailed, wantStatus: 507},
		{name: "599", reply: reply(599, ""), want: classFailed, wantStatus: 599},

		// Outside 100-599, or no valid response at all.
		{name: "600", reply: reply(600, ""), want: classUnavailable, wantStatus: 600},
		{name: "999", reply: reply(999, ""), want: classUnavailable, wantStatus: 999},
		{name: "malformed status line", raw: "HTTP/1.1 abc\r\n\r\n", want: classUnavailable, wantText: "malformed HTTP"},
		{name: "closed without a response", raw: "", want: classUnavailable, wantText: "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				url      string
				requests func() int
				bodyLen  = -1
			)
			if tt.reply != nil {
				s := newServer(t, tt.reply)
				url = s.URL
				requests = func() int {
					reqs := s.requests()
					if len(reqs) > 0 {
						bodyLen = len(reqs[0].body)
					}
					return len(reqs)
				}
			} else {
				s := newRawServer(t, tt.raw, tt.hold)
				url, requests = s.URL, s.requests
			}
			h, logs := newTestHTTP(t, url+"?code=query-secret", time.Second)
			err := h.Handle(t.Context(), testRecords())

			if got := classOf(err); got != tt.want {
				t.Fatalf("got %s (%v), want %s", got, err, tt.want)
			}
			if n := requests(); n != 1 {
				t.Errorf("got %d requests, want 1", n)
			}
			if err == nil {
				return
			}
			msg := err.Error()
			for _, secret := range []string{"s3cr3t", "query-secret", "pa55word"} {
				if strings.Contains(msg, secret) {
					t.Errorf("got error %q, want it without %q", msg, secret)
				}
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("got error %q, want one line", msg)
			}
			if tt.wantText != "" && !strings.Contains(msg, tt.wantText) {
				t.Errorf("got error %q, want it to contain %q", msg, tt.wantText)
			}
			if tt.notText != "" && strings.Contains(msg, tt.notText) {
				t.Errorf("got error %q, want it without %q", msg, tt.notText)
			}
			var items *handler.ItemFailures
			if errors.As(err, &items) && !slices.Equal(items.Offsets, tt.wantOffsets) {
				t.Errorf("got offsets %v, want %v", items.Offsets, tt.wantOffsets)
			}
			var se *StatusError
			if gotStatus := errors.As(err, &se); gotStatus != (tt.wantStatus != 0) || (gotStatus && se.StatusCode != tt.wantStatus) {
				t.Errorf("got StatusError %v, want status %d", se, tt.wantStatus)
			}
			if se != nil && bodyLen >= 0 && se.RequestBytes != bodyLen {
				t.Errorf("got RequestBytes %d, want %d", se.RequestBytes, bodyLen)
			}
			if gotInvalid := errors.Is(err, ErrInvalidResponse); gotInvalid != tt.wantInvalid {
				t.Errorf("got errors.Is(ErrInvalidResponse) %t, want %t", gotInvalid, tt.wantInvalid)
			}
			if n := logs.FilterLevelExact(zap.WarnLevel).Len(); (n > 0) != tt.wantInvalid {
				t.Errorf("got %d warnings, want some: %t", n, tt.wantInvalid)
			}
		})
	}
}

// TestHTTP413Message checks that a 413 says why in words, with the size of
// the request, so that a single record dead-lettered for it says why.
func TestHTTP413Message(t *testing.T) {
	s := newServer(t, reply(413, ""))
	h, _ := newTestHTTP(t, s.URL+"/hook", time.Second)
	b := testRecords()
	b.Records = b.Records[:1]
	err := h.Handle(t.Context(), b)
	size := len(appendBody(nil, &b))
	want := "http handler: POST " + s.URL + "/hook: status 413 Request Entity Too Large: the request body of " +
		strconv.Itoa(size) + " bytes is too large for the service"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// stall answers after the request's context ends, having first written
// the status when headers is set, and reports on started that it is
// answering.
func stall(started chan<- struct{}, headers bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if headers {
			w.WriteHeader(200)
			_, _ = io.WriteString(w, `{"batchItem`)
			w.(http.Flusher).Flush()
		}
		if started != nil {
			started <- struct{}{}
		}
		<-r.Context().Done()
	}
}

// TestHTTPUnavailable checks that a service that cannot be reached or does
// not answer in time is unavailable, and that the errors name the URL
// without its credentials.
func TestHTTPUnavailable(t *testing.T) {
	closedPort := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://user:pa55word@" + addr + "/"
	}
	plain := func(t *testing.T) string {
		s := newServer(t, reply(200, ""))
		return strings.Replace(s.URL, "http://", "https://", 1) + "/"
	}
	untrusted := func(t *testing.T) string {
		s := httptest.NewTLSServer(reply(200, ""))
		t.Cleanup(s.Close)
		return s.URL + "/"
	}
	silent := func(t *testing.T) string {
		return newServer(t, stall(nil, false)).URL + "/"
	}
	slowBody := func(t *testing.T) string {
		return newServer(t, stall(nil, true)).URL + "/"
	}
	dnsClient := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: "hooks.invalid", IsNotFound: true}}
		},
	}}
	tests := []struct {
		name     string
		url      func(t *testing.T) string
		client   *http.Client
		timeout  time.Duration
		wantAs   func(error) bool
		wantText string
	}{
		{
			name: "connection refused", url: closedPort, timeout: time.Second,
			wantAs: func(err error) bool { var e *net.OpError; return errors.As(err, &e) },
		},
		{
			name: "DNS", url: func(*testing.T) string { return "http://hooks.invalid/" }, client: dnsClient, timeout: time.Second,
			wantAs: func(err error) bool { var e *net.DNSError; return errors.As(err, &e) }, wantText: "no such host",
		},
		{
			name: "TLS to a plaintext server", url: plain, timeout: time.Second,
			wantText: "server gave HTTP response to HTTPS client",
		},
		{
			name: "TLS with an untrusted certificate", url: untrusted, timeout: time.Second,
			wantAs: func(err error) bool { var e *tls.CertificateVerificationError; return errors.As(err, &e) },
		},
		{
			name: "no response in time", url: silent, timeout: 50 * time.Millisecond,
			wantAs:   func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
			wantText: "no response within 50ms",
		},
		{
			name: "body not read in time", url: slowBody, timeout: 50 * time.Millisecond,
			wantAs:   func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
			wantText: "status 200, reading the response: no response within 50ms",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.url(t)
			h, err := NewHTTP(config.Handler{HTTPURL: u, HTTPTimeout: tt.timeout, HTTPAuth: testAuth}, zap.NewNop(), tt.client)
			if err != nil {
				t.Fatal(err)
			}
			err = h.Handle(t.Context(), testRecords())
			if got := classOf(err); got != classUnavailable {
				t.Fatalf("got %s (%v), want %s", got, err, classUnavailable)
			}
			if tt.wantAs != nil && !tt.wantAs(err) {
				t.Errorf("got %v (%T), want it to wrap the cause", err, errors.Unwrap(err))
			}
			msg := err.Error()
			if tt.wantText != "" && !strings.Contains(msg, tt.wantText) {
				t.Errorf("got %q, want it to contain %q", msg, tt.wantText)
			}
			if strings.Contains(msg, "pa55word") || strings.Contains(msg, "s3cr3t") {
				t.Errorf("got %q, want no credentials", msg)
			}
		})
	}
}

// TestHTTPCanceled checks that a request given up by the caller is not
// taken for an unavailable service: the error wraps the context's cause.
func TestHTTPCanceled(t *testing.T) {
	errRevoked := errors.New("partition revoked")
	tests := []struct {
		name    string
		headers bool // the service sends the status before the end
		// end returns the context Handle runs with and what ends it once
		// the service has the request.
		end    func(context.Context) (context.Context, context.CancelFunc)
		wantIs error
	}{
		{
			name:   "canceled before the response",
			end:    context.WithCancel,
			wantIs: context.Canceled,
		},
		{
			name:    "canceled while reading the body",
			headers: true,
			end:     context.WithCancel,
			wantIs:  context.Canceled,
		},
		{
			name: "canceled with a cause",
			end: func(ctx context.Context) (context.Context, context.CancelFunc) {
				ctx, c := context.WithCancelCause(ctx)
				return ctx, func() { c(errRevoked) }
			},
			wantIs: errRevoked,
		},
		{
			name: "the caller's deadline, before the handler's",
			end: func(ctx context.Context) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				t.Cleanup(cancel)
				return ctx, func() {}
			},
			wantIs: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started := make(chan struct{}, 1)
			s := newServer(t, stall(started, tt.headers))
			h, _ := newTestHTTP(t, s.URL, time.Minute)
			ctx, end := tt.end(t.Context())
			defer end()
			go func() {
				<-started
				end()
			}()
			err := h.Handle(ctx, testRecords())
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("got %v, want it to wrap %v", err, tt.wantIs)
			}
			if got := classOf(err); got != classFailed {
				t.Errorf("got %s (%v), want neither unavailable nor rejected", got, err)
			}
		})
	}
}
