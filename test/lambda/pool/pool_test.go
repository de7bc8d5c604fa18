package pool

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// fakeEmulator answers like the emulator: on /2015-03-31/functions/function/invocations
// only, with answer; it blocks each invocation until release is closed
// (nil: answers at once) and fails the test on a concurrent invocation.
func fakeEmulator(t *testing.T, answer string, release chan struct{}, entered chan<- struct{}) *httptest.Server {
	t.Helper()
	busy := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/2015-03-31/functions/function/invocations" {
			t.Errorf("emulator got path %s", r.URL.Path)
		}
		select {
		case busy <- struct{}{}:
			defer func() { <-busy }()
		default:
			t.Error("a second invocation reached a busy emulator")
		}
		if entered != nil {
			entered <- struct{}{}
		}
		if release != nil {
			<-release
		}
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func lambdaClient(url string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
		RetryMaxAttempts: 1,
	})
}

func TestProxy(t *testing.T) {
	t.Run("routes to an idle emulator, any function name", func(t *testing.T) {
		emu := fakeEmulator(t, `{"batchItemFailures":[]}`, nil, nil)
		p := NewProxy(emu.URL)
		srv := httptest.NewServer(p)
		defer srv.Close()
		out, err := lambdaClient(srv.URL).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("orders"), Payload: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		if string(out.Payload) != `{"batchItemFailures":[]}` || out.FunctionError != nil {
			t.Errorf("got payload %s, function error %v; want the emulator's answer and no function error", out.Payload, aws.ToString(out.FunctionError))
		}
		if got := p.Invoked.Load(); got != 1 {
			t.Errorf("got %d invocations, want 1", got)
		}
	})

	t.Run("sums the records counted in the answers, passes the event whole", func(t *testing.T) {
		var got []string
		emu := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got = append(got, string(b))
			_, _ = io.WriteString(w, `{"batchItemFailures":[],"records":`+strings.Repeat("7", len(got))+`}`)
		}))
		defer emu.Close()
		p := NewProxy(emu.URL)
		srv := httptest.NewServer(p)
		defer srv.Close()
		event := `{"records":{"t-0":[` + strings.Repeat(`{"offset":1},`, 5000) + `{"offset":2}]}}`
		for range 2 {
			if _, err := lambdaClient(srv.URL).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("orders"), Payload: []byte(event)}); err != nil {
				t.Fatal(err)
			}
		}
		if p.Records.Load() != 7+77 {
			t.Errorf("Records = %d, want %d", p.Records.Load(), 7+77)
		}
		if len(got) != 2 || got[0] != event || got[1] != event {
			t.Errorf("the emulator got %d events, not the one sent", len(got))
		}
		if p.FunctionErrors.Load() != 0 {
			t.Errorf("%d function errors", p.FunctionErrors.Load())
		}
	})

	t.Run("a function error in the body gets X-Amz-Function-Error", func(t *testing.T) {
		emu := fakeEmulator(t, `{"errorType":"ValueError","errorMessage":"bad record"}`, nil, nil)
		p := NewProxy(emu.URL)
		srv := httptest.NewServer(p)
		defer srv.Close()
		out, err := lambdaClient(srv.URL).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("orders"), Payload: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.FunctionError) != "Unhandled" || p.FunctionErrors.Load() != 1 {
			t.Errorf("got function error %q (%d counted), want Unhandled (1)", aws.ToString(out.FunctionError), p.FunctionErrors.Load())
		}
	})

	t.Run("a result with errorType but no errorMessage is the function's result", func(t *testing.T) {
		emu := fakeEmulator(t, `{"errorType":"none","batchItemFailures":[]}`, nil, nil)
		p := NewProxy(emu.URL)
		srv := httptest.NewServer(p)
		defer srv.Close()
		out, err := lambdaClient(srv.URL).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("orders"), Payload: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		if out.FunctionError != nil {
			t.Errorf("got function error %q, want none", aws.ToString(out.FunctionError))
		}
	})

	t.Run("every emulator busy: 429 TooManyRequestsException, then served once idle", func(t *testing.T) {
		release, entered := make(chan struct{}), make(chan struct{}, 1)
		emu := fakeEmulator(t, `{}`, release, entered)
		p := NewProxy(emu.URL)
		srv := httptest.NewServer(p)
		defer srv.Close()
		cl := lambdaClient(srv.URL)
		first := make(chan error, 1)
		go func() {
			_, err := cl.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("orders"), Payload: []byte(`{}`)})
			first <- err
		}()
		<-entered
		_, err := cl.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("orders"), Payload: []byte(`{}`)})
		var tm *types.TooManyRequestsException
		if !errors.As(err, &tm) {
			t.Errorf("got %v, want TooManyRequestsException", err)
		}
		if got := p.Throttled.Load(); got != 1 {
			t.Errorf("got %d throttled, want 1", got)
		}
		close(release)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("orders"), Payload: []byte(`{}`)}); err != nil {
			t.Errorf("after the emulator was idle again: %v", err)
		}
	})

	t.Run("WaitIdle waits for an invocation in flight", func(t *testing.T) {
		release, entered := make(chan struct{}), make(chan struct{}, 1)
		emu := fakeEmulator(t, `{}`, release, entered)
		p := NewProxy(emu.URL)
		srv := httptest.NewServer(p)
		defer srv.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := http.Post(srv.URL+"/2015-03-31/functions/f/invocations", "application/json", strings.NewReader(`{}`))
			if err == nil {
				resp.Body.Close()
			}
		}()
		<-entered
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := p.WaitIdle(ctx); err == nil {
			t.Error("WaitIdle returned nil while the emulator was busy")
		}
		close(release)
		<-done
		if err := p.WaitIdle(context.Background()); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("other requests: 404 ResourceNotFoundException", func(t *testing.T) {
		srv := httptest.NewServer(NewProxy())
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/2015-03-31/functions/orders")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("x-amzn-ErrorType") != "ResourceNotFoundException" {
			t.Errorf("got %d %q, want 404 ResourceNotFoundException", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
		}
	})
}

// TestFleet: the stand-in for Lambda's fleet answers every invocation
// itself after the function's time, with success, counting the event's
// records; n invocations at once, 429 TooManyRequestsException beyond, as
// a proxy with n emulators.
func TestFleet(t *testing.T) {
	t.Run("waits the function's time, counts the records, answers success", func(t *testing.T) {
		const delay = 50 * time.Millisecond
		p := NewFleet(1, delay)
		srv := httptest.NewServer(p)
		defer srv.Close()
		event := `{"eventSource":"aws:kafka","records":{"t-0":[` + strings.Repeat(`{"topic":"t","partition":0,"offset":1,"key":"a2V5"},`, 99) +
			`{"topic":"t","partition":0,"offset":100,"key":"a2V5"}],"t-1":[{"offset":7}]}}`
		for range 2 {
			start := time.Now()
			out, err := lambdaClient(srv.URL).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("orders"), Payload: []byte(event)})
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < delay {
				t.Errorf("answered after %v, before the function's %v", took, delay)
			}
			if string(out.Payload) != `{"batchItemFailures":[]}` || out.FunctionError != nil || out.StatusCode != http.StatusOK {
				t.Errorf("got %d %s, function error %q; want 200 {\"batchItemFailures\":[]}", out.StatusCode, out.Payload, aws.ToString(out.FunctionError))
			}
		}
		if got := p.Records.Load(); got != 2*101 {
			t.Errorf("Records = %d, want %d (101 records, twice)", got, 2*101)
		}
		if p.Invoked.Load() != 2 || p.Throttled.Load() != 0 || p.FunctionErrors.Load() != 0 {
			t.Errorf("invoked %d, throttled %d, function errors %d; want 2, 0, 0", p.Invoked.Load(), p.Throttled.Load(), p.FunctionErrors.Load())
		}
	})

	t.Run("n at once, then 429 TooManyRequestsException", func(t *testing.T) {
		// Long enough that both invocations are still in the function
		// when the third arrives, on a loaded machine too.
		const delay = 2 * time.Second
		p := NewFleet(2, delay)
		srv := httptest.NewServer(p)
		defer srv.Close()
		cl := lambdaClient(srv.URL)
		event := []byte(`{"records":{"t-0":[{"offset":1},{"offset":2}]}}`)
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := cl.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("orders"), Payload: event})
				errs <- err
			}()
		}
		for deadline := time.Now().Add(10 * time.Second); len(p.free) > 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d of 2 invocations in flight after 10s", 2-len(p.free))
			}
		}
		_, err := cl.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("orders"), Payload: event})
		var tm *types.TooManyRequestsException
		if !errors.As(err, &tm) {
			t.Errorf("the third invocation: got %v, want TooManyRequestsException", err)
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if p.Invoked.Load() != 2 || p.Throttled.Load() != 1 || p.Records.Load() != 4 {
			t.Errorf("invoked %d, throttled %d, records %d; want 2, 1, 4", p.Invoked.Load(), p.Throttled.Load(), p.Records.Load())
		}
	})
}

func TestStartWithoutEmulator(t *testing.T) {
	if _, err := Start(Options{N: 1, Cmd: []string{"true"}}); err == nil {
		t.Error("Start without RIE returned no error")
	}
}

// TestFreeAddrsDistinct: the addresses of one Start are distinct. Taken one
// at a time, each listener closed before the next, the kernel handed the
// same port out twice now and then, and an emulator's invocations went to
// another's runtime API (a warm-up invocation answered 404).
func TestFreeAddrsDistinct(t *testing.T) {
	addrs, err := freeAddrs(500)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("address %s handed out twice", a)
		}
		seen[a] = true
	}
}
