package builtin

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/mskevent"
)

// fakeLambda speaks Lambda's Invoke REST API: POST
// /2015-03-31/functions/NAME/invocations with the event as the body.
type fakeLambda struct {
	t      *testing.T
	mu     sync.Mutex
	events [][]byte
	types  []string // X-Amz-Invocation-Type of each request
	answer func(n int, event []byte, w http.ResponseWriter)
}

func (f *fakeLambda) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/2015-03-31/functions/orders-fn/invocations" {
		w.Header().Set("x-amzn-ErrorType", "ResourceNotFoundException")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"Type":"User","message":"Function not found: `+r.URL.Path+`"}`)
		return
	}
	if r.Header.Get("Authorization") == "" {
		f.t.Errorf("request without a signature")
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.events = append(f.events, body)
	f.types = append(f.types, r.Header.Get("X-Amz-Invocation-Type"))
	n := len(f.events)
	f.mu.Unlock()
	f.answer(n, body, w)
}

func awsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("x-amzn-ErrorType", code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"Type":"User","message":"`+msg+`"}`)
}

func newTestLambda(t *testing.T, f *fakeLambda, opts ...LambdaOption) *Lambda {
	t.Helper()
	f.t = t
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	opts = append([]LambdaOption{WithLambdaOptions(func(o *lambda.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.Region = "us-east-1"
		o.Credentials = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")
	})}, opts...)
	h, err := NewLambda(config.Handler{Name: config.HandlerLambda, LambdaFunction: "orders-fn", LambdaTimeout: 5 * time.Second,
		KafkaClusterARN: "arn:aws:kafka:us-east-1:123456789012:cluster/orders/abcd"},
		config.EventSource{Brokers: []string{"b-1:9098", "b-2:9098"}, AWSRegion: "us-east-1"}, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func lambdaBatch(offsets ...int64) handler.Batch {
	b := handler.Batch{Topic: "orders", Partition: 3}
	for _, o := range offsets {
		b.Records = append(b.Records, handler.Record{Raw: &kgo.Record{
			Topic: "orders", Partition: 3, Offset: o, Timestamp: time.UnixMilli(1764000000123),
			Key: []byte("SKU-" + string(rune('0'+o%10))), Value: []byte(`{"id":42}`),
			Headers: []kgo.RecordHeader{{Key: "trace-id", Value: []byte("t-42")}},
		}})
	}
	return b
}

func TestLambdaInvokeEvent(t *testing.T) {
	f := &fakeLambda{answer: func(_ int, _ []byte, w http.ResponseWriter) { w.WriteHeader(http.StatusOK) }}
	h := newTestLambda(t, f)
	if err := h.Handle(context.Background(), lambdaBatch(42, 43)); err != nil {
		t.Fatal(err)
	}
	if len(f.events) != 1 || f.types[0] != "RequestResponse" {
		t.Fatalf("%d invocations of types %v, want one RequestResponse", len(f.events), f.types)
	}
	want, _ := mskevent.New(mskevent.Options{ClusterARN: "arn:aws:kafka:us-east-1:123456789012:cluster/orders/abcd",
		BootstrapServers: []string{"b-1:9098", "b-2:9098"}}).Append(nil, "orders", 3, lambdaBatch(42, 43).Records, 0)
	if !bytes.Equal(f.events[0], want) {
		t.Errorf("event:\n got %s\nwant %s", f.events[0], want)
	}
	if !strings.Contains(string(want), `"headers":[{"trace-id":[116,45,52,50]}]`) {
		t.Errorf("headers not as the contract's example: %s", want)
	}
}

// TestLambdaEndpointFromEnvironment checks that the default configuration
// is used: AWS_ENDPOINT_URL_LAMBDA and the credentials of the environment.
func TestLambdaEndpointFromEnvironment(t *testing.T) {
	f := &fakeLambda{t: t, answer: func(_ int, _ []byte, w http.ResponseWriter) { _, _ = io.WriteString(w, `{"batchItemFailures":[]}`) }}
	srv := httptest.NewServer(f)
	defer srv.Close()
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	h, err := NewLambda(config.Handler{LambdaFunction: "orders-fn"}, config.EventSource{AWSRegion: "eu-west-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Handle(context.Background(), lambdaBatch(1)); err != nil {
		t.Fatal(err)
	}
	if len(f.events) != 1 {
		t.Fatalf("%d invocations", len(f.events))
	}
}

func TestLambdaAnswers(t *testing.T) {
	type class int
	const (
		ok class = iota
		items
		failed
		unavailable
		rejected
	)
	classOf := func(err error) class {
		var it *handler.ItemFailures
		switch {
		case err == nil:
			return ok
		case errors.Is(err, handler.ErrUnavailable):
			return unavailable
		case errors.As(err, &it):
			return items
		case errors.Is(err, handler.ErrPermanent):
			return rejected
		}
		return failed
	}
	for _, tc := range []struct {
		name    string
		answer  func(w http.ResponseWriter)
		class   class
		offsets []int64
		msg     string // a part of the error
		misconf bool
	}{
		{"empty", func(w http.ResponseWriter) {}, ok, nil, "", false},
		{"object shape", func(w http.ResponseWriter) {
			_, _ = io.WriteString(w, `{"batchItemFailures":[{"itemIdentifier":{"partition":"orders-3","offset":43}}]}`)
		}, items, []int64{43}, "reported 1 of 3", false},
		{"string shape", func(w http.ResponseWriter) {
			_, _ = io.WriteString(w, `{"batchItemFailures":[{"itemIdentifier":"44"},{"itemIdentifier":"42"}]}`)
		}, items, []int64{42, 44}, "", false},
		{"invalid answer", func(w http.ResponseWriter) {
			_, _ = io.WriteString(w, `{"batchItemFailures":[{"itemIdentifier":{"partition":"orders-4","offset":43}}]}`)
		}, failed, nil, "orders-4", false},
		{"function error", func(w http.ResponseWriter) {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			_, _ = io.WriteString(w, `{"errorMessage":"bad record 43","errorType":"ValueError","requestId":"r","stackTrace":[]}`)
		}, failed, nil, "function error (Unhandled): ValueError: bad record 43", false},
		{"throttled", func(w http.ResponseWriter) {
			awsError(w, 429, "TooManyRequestsException", "Rate Exceeded.")
		}, unavailable, nil, "throttled", false},
		{"service error", func(w http.ResponseWriter) { awsError(w, 500, "ServiceException", "boom") }, unavailable, nil, "ServiceException", false},
		{"capacity", func(w http.ResponseWriter) { awsError(w, 502, "ENILimitReachedException", "eni") }, unavailable, nil, "ENILimitReached", false},
		{"not ready", func(w http.ResponseWriter) { awsError(w, 502, "ResourceNotReadyException", "wait") }, unavailable, nil, "", false},
		{"access denied", func(w http.ResponseWriter) { awsError(w, 403, "AccessDeniedException", "no") }, unavailable, nil, "misconfiguration", true},
		{"not found", func(w http.ResponseWriter) { awsError(w, 404, "ResourceNotFoundException", "no fn") }, unavailable, nil, "misconfiguration", true},
		{"kms", func(w http.ResponseWriter) { awsError(w, 502, "KMSAccessDeniedException", "kms") }, unavailable, nil, "misconfiguration", true},
		{"bad token", func(w http.ResponseWriter) { awsError(w, 403, "UnrecognizedClientException", "token") }, unavailable, nil, "misconfiguration", true},
		{"too large", func(w http.ResponseWriter) { awsError(w, 413, "RequestTooLargeException", "big") }, rejected, nil, "RequestTooLarge", false},
		{"entity too large", func(w http.ResponseWriter) {
			awsError(w, 413, "RequestEntityTooLargeException", "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
		}, rejected, nil, "RequestEntityTooLarge", false},
		{"413 without a code", func(w http.ResponseWriter) { w.WriteHeader(413) }, rejected, nil, "413", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeLambda{answer: func(_ int, _ []byte, w http.ResponseWriter) { tc.answer(w) }}
			h := newTestLambda(t, f)
			err := h.Handle(context.Background(), lambdaBatch(42, 43, 44))
			if got := classOf(err); got != tc.class {
				t.Fatalf("class %d, want %d: %v", got, tc.class, err)
			}
			if err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q, want it to contain %q", err, tc.msg)
			}
			if it, ok := errors.AsType[*handler.ItemFailures](err); ok && !slices.Equal(it.Offsets, tc.offsets) {
				t.Errorf("offsets %v, want %v", it.Offsets, tc.offsets)
			}
			le, isLE := errors.AsType[*LambdaError](err)
			if isLE && le.Misconfigured != tc.misconf || !isLE && tc.misconf {
				t.Errorf("misconfigured: %v, want %v (%v)", isLE && le.Misconfigured, tc.misconf, err)
			}
			if tc.name == "throttled" && !(isLE && le.Throttled) {
				t.Errorf("not marked throttled: %v", err)
			}
			if strings.Contains(fmtErr(err), "\n") {
				t.Errorf("error on several lines: %q", err)
			}
		})
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

type failingCreds struct{}

func (failingCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{}, errors.New("no EC2 IMDS role found")
}

func TestLambdaCredentialsError(t *testing.T) {
	f := &fakeLambda{answer: func(_ int, _ []byte, w http.ResponseWriter) { t.Error("invoked without credentials") }}
	h := newTestLambda(t, f, WithLambdaOptions(func(o *lambda.Options) { o.Credentials = credentialsMarker{failingCreds{}} }))
	err := h.Handle(context.Background(), lambdaBatch(1))
	le, ok := errors.AsType[*LambdaError](err)
	if !errors.Is(err, handler.ErrUnavailable) || !ok || !le.Misconfigured {
		t.Fatalf("got %v, want an unavailable misconfiguration", err)
	}
}

func TestLambdaTimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	f := &fakeLambda{answer: func(_ int, _ []byte, w http.ResponseWriter) { <-release }}
	h := newTestLambda(t, f)
	defer close(release)
	h.timeout = 50 * time.Millisecond
	err := h.Handle(context.Background(), lambdaBatch(1))
	if !errors.Is(err, handler.ErrUnavailable) || !strings.Contains(err.Error(), "LAMBDA_INVOKE_TIMEOUT") {
		t.Fatalf("got %v, want unavailable naming LAMBDA_INVOKE_TIMEOUT", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.timeout = time.Minute
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	err = h.Handle(ctx, lambdaBatch(1))
	if errors.Is(err, handler.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want the caller's cancellation and no class", err)
	}
}

// TestLambdaCutsLargeBatches checks that a batch whose event is over the
// limit is cut into events under it, every record sent once, and item
// failures of every part reported.
func TestLambdaCutsLargeBatches(t *testing.T) {
	const limit = 2000
	f := &fakeLambda{answer: func(n int, event []byte, w http.ResponseWriter) {
		if len(event) > limit {
			t.Errorf("event of %d bytes", len(event))
		}
		var ev struct {
			Records map[string][]struct{ Offset int64 } `json:"records"`
		}
		if err := json.Unmarshal(event, &ev); err != nil {
			t.Error(err)
		}
		// Fail the first record of every event.
		first := ev.Records["orders-3"][0].Offset
		_, _ = io.WriteString(w, `{"batchItemFailures":[{"itemIdentifier":{"partition":"orders-3","offset":`+strconv.FormatInt(first, 10)+`}}]}`)
	}}
	h := newTestLambda(t, f, WithRequestLimit(limit))
	b := lambdaBatch()
	for i := range int64(20) {
		r := lambdaBatch(i).Records[0]
		r.Raw.Value = bytes.Repeat([]byte("v"), 200)
		b.Records = append(b.Records, r)
	}
	err := h.Handle(context.Background(), b)
	it, ok := errors.AsType[*handler.ItemFailures](err)
	if !ok {
		t.Fatalf("got %v, want item failures", err)
	}
	if len(f.events) < 2 {
		t.Fatalf("%d invocations, want the batch cut", len(f.events))
	}
	var seen []int64
	var firsts []int64
	for _, e := range f.events {
		var ev struct {
			Records map[string][]struct{ Offset int64 } `json:"records"`
		}
		_ = json.Unmarshal(e, &ev)
		for i, r := range ev.Records["orders-3"] {
			if i == 0 {
				firsts = append(firsts, r.Offset)
			}
			seen = append(seen, r.Offset)
		}
	}
	for i := range seen {
		if seen[i] != int64(i) {
			t.Fatalf("offsets sent %v, want 0..19 once each in order", seen)
		}
	}
	if len(seen) != 20 || !slices.Equal(it.Offsets, firsts) {
		t.Errorf("failures %v, want %v; %d records sent", it.Offsets, firsts, len(seen))
	}
}

// TestLambdaRecordTooLarge checks that a record whose event cannot fit is
// rejected before anything is invoked, naming its size.
func TestLambdaRecordTooLarge(t *testing.T) {
	const limit = 2000
	f := &fakeLambda{answer: func(int, []byte, http.ResponseWriter) {}}
	h := newTestLambda(t, f, WithRequestLimit(limit))
	b := lambdaBatch(1, 2, 3)
	b.Records[1].Raw.Value = bytes.Repeat([]byte("v"), 1500) // 2000 in base64
	err := h.Handle(context.Background(), b)
	if !errors.Is(err, handler.ErrPermanent) || !strings.Contains(err.Error(), "offset 2") || !strings.Contains(err.Error(), "request limit of 2000 bytes") {
		t.Fatalf("got %v, want the batch rejected naming offset 2 and the limit", err)
	}
	if len(f.events) != 0 {
		t.Fatalf("%d invocations, want none", len(f.events))
	}
	// Bisected down to the records: the others go, the large one alone
	// is rejected again.
	if err := h.Handle(context.Background(), handler.Batch{Topic: "orders", Partition: 3, Records: b.Records[:1]}); err != nil {
		t.Fatal(err)
	}
	if err := h.Handle(context.Background(), handler.Batch{Topic: "orders", Partition: 3, Records: b.Records[1:2]}); !errors.Is(err, handler.ErrPermanent) {
		t.Fatalf("single large record: %v", err)
	}
}

func TestLambdaJSONFormat(t *testing.T) {
	f := &fakeLambda{answer: func(int, []byte, http.ResponseWriter) {}}
	f.t = t
	srv := httptest.NewServer(f)
	defer srv.Close()
	h, err := NewLambda(config.Handler{LambdaFunction: "orders-fn", EventRecordFormat: config.RecordJSON},
		config.EventSource{AWSRegion: "us-east-1", ValueRegistry: config.RegistryConfluent, ValueFormat: config.FormatAvro},
		nil, WithLambdaOptions(func(o *lambda.Options) {
			o.BaseEndpoint = aws.String(srv.URL)
			o.Credentials = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")
		}))
	if err != nil {
		t.Fatal(err)
	}
	b := lambdaBatch(7)
	b.Records[0].Raw.Value = []byte{0, 0, 0, 0, 12, 2, 'x'}
	b.Records[0].Key = json.RawMessage(`"SKU-7"`)
	b.Records[0].Value = json.RawMessage(`{"id":7}`)
	if err := h.Handle(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	var ev struct {
		EventSource string `json:"eventSource"`
		Records     map[string][]struct {
			Value    string          `json:"value"`
			Metadata json.RawMessage `json:"valueSchemaMetadata"`
		} `json:"records"`
	}
	if err := json.Unmarshal(f.events[0], &ev); err != nil {
		t.Fatal(err)
	}
	r := ev.Records["orders-3"][0]
	v, _ := base64.StdEncoding.DecodeString(r.Value)
	if string(v) != `{"id":7}` || string(r.Metadata) != `{"dataFormat":"JSON","schemaId":"12"}` || ev.EventSource != "SelfManagedKafka" {
		t.Errorf("event %s", f.events[0])
	}
}

func TestLambdaDryRun(t *testing.T) {
	f := &fakeLambda{answer: func(_ int, _ []byte, w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }}
	h := newTestLambda(t, f)
	if err := h.DryRun(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.types) != 1 || f.types[0] != "DryRun" {
		t.Fatalf("invocation types %v, want DryRun", f.types)
	}
	f.answer = func(_ int, _ []byte, w http.ResponseWriter) { awsError(w, 403, "AccessDeniedException", "not allowed") }
	err := h.DryRun(context.Background())
	if le, ok := errors.AsType[*LambdaError](err); !ok || !le.Misconfigured {
		t.Fatalf("got %v, want a misconfiguration", err)
	}
}

func TestLambdaConfig(t *testing.T) {
	if _, err := NewLambda(config.Handler{}, config.EventSource{}, nil); err == nil || !strings.Contains(err.Error(), "LAMBDA_FUNCTION_NAME") {
		t.Fatalf("got %v", err)
	}
	f, ok := BuiltinFor(config.HandlerLambda, config.EventSource{AWSRegion: "us-east-1"}, nil)
	if !ok {
		t.Fatal("no lambda builtin")
	}
	if _, err := f(handler.Deps{Config: config.Handler{Name: config.HandlerLambda, LambdaFunction: "fn"}}); err != nil {
		t.Fatal(err)
	}
}

func TestLambdaMetrics(t *testing.T) {
	answers := []func(w http.ResponseWriter){
		func(w http.ResponseWriter) { awsError(w, 429, "TooManyRequestsException", "slow down") },
		func(w http.ResponseWriter) {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			_, _ = io.WriteString(w, `{"errorType":"E","errorMessage":"m"}`)
		},
		func(w http.ResponseWriter) {},
		func(w http.ResponseWriter) { awsError(w, 404, "ResourceNotFoundException", "gone") },
	}
	f := &fakeLambda{answer: func(n int, _ []byte, w http.ResponseWriter) { answers[n-1](w) }}
	reg := prometheus.NewRegistry()
	h := newTestLambda(t, f, WithRegisterer(reg))
	for range answers {
		_ = h.Handle(context.Background(), lambdaBatch(1))
	}
	for _, outcome := range []string{"throttled", "function_error", "ok", "misconfigured"} {
		if got := testutil.ToFloat64(h.invokes.WithLabelValues("orders-fn", outcome)); got != 1 {
			t.Errorf("%s: %v invocations, want 1", outcome, got)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "consumer_lambda_invocations_total"); err != nil || n != 4 {
		t.Errorf("registered series: %d, %v", n, err)
	}
}
