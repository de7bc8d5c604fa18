package builtin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
)

// answerTransport answers every request at once with a function's
// success, without a network: what is left is the service's CPU per
// invocation (the event, the SDK's request and signature, the answer).
type answerTransport struct{ body string }

func (a answerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}, "X-Amz-Executed-Version": {"$LATEST"}},
		Body:          io.NopCloser(strings.NewReader(a.body)),
		ContentLength: int64(len(a.body)), Request: r}, nil
}

// lambdaBenchBatch is a batch like the Lambda bench's: n records with a key of
// a few bytes, a small JSON value and no headers.
func lambdaBenchBatch(n int) handler.Batch {
	b := handler.Batch{Topic: "orders", Partition: 3}
	for i := range n {
		b.Records = append(b.Records, handler.Record{Raw: &kgo.Record{
			Topic: "orders", Partition: 3, Offset: int64(1000 + i), Timestamp: time.UnixMilli(1764000000123),
			Key:   fmt.Appendf(nil, "key-%d", 4000+i*37),
			Value: fmt.Appendf(nil, `{"id":%d,"name":"product %d","price":%d.99,"tags":["a","b"]}`, i, i, i%100),
		}})
	}
	return b
}

// BenchmarkLambdaHandle is one invocation of a batch of 100 records, the
// function answering success at once: the service's CPU per invocation.
func BenchmarkLambdaHandle(b *testing.B) {
	for _, answer := range []string{`null`, `{"batchItemFailures":[]}`} {
		b.Run("answer="+answer, func(b *testing.B) {
			h := benchLambda(b, "http://lambda.test", &http.Client{Transport: answerTransport{answer}})
			batch := lambdaBenchBatch(100)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := h.Handle(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLambdaHandleLoopback is the same over a loopback connection to
// a server that answers at once: the HTTP client's writes included, as
// the Lambda bench's proxy receives them.
func BenchmarkLambdaHandleLoopback(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"batchItemFailures":[]}`)
	}))
	defer srv.Close()
	h := benchLambda(b, srv.URL, nil)
	batch := lambdaBenchBatch(100)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := h.Handle(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}

// benchLambda is the benchmarks' Lambda handler, invoking endpoint with
// static credentials; client nil keeps the SDK's HTTP client.
func benchLambda(b *testing.B, endpoint string, client *http.Client) *Lambda {
	h, err := NewLambda(config.Handler{Name: config.HandlerLambda, LambdaFunction: "orders-fn", LambdaTimeout: 5 * time.Second,
		KafkaClusterARN: "arn:aws:kafka:us-east-1:123456789012:cluster/orders/abcd"},
		config.EventSource{Brokers: []string{"b-1:9098", "b-2:9098"}, AWSRegion: "us-east-1"}, nil,
		WithLambdaOptions(func(o *lambda.Options) {
			o.BaseEndpoint = aws.String(endpoint)
			o.Region = "us-east-1"
			o.Credentials = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")
			if client != nil {
				o.HTTPClient = client
			}
		}))
	if err != nil {
		b.Fatal(err)
	}
	return h
}
