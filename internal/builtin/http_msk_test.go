package builtin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/mskevent"
)

// TestHTTPMSKBody checks that HTTP_HANDLER_BODY=msk posts the event the
// lambda handler invokes with, and reads the same answers.
func TestHTTPMSKBody(t *testing.T) {
	var got []byte
	answer := `{"batchItemFailures":[{"itemIdentifier":{"partition":"orders-3","offset":43}}]}`
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	defer srv.Close()
	cfg := config.Handler{Name: config.HandlerHTTP, HTTPURL: srv.URL, HTTPBody: config.BodyMSK,
		KafkaClusterARN: "arn:aws:kafka:us-east-1:123456789012:cluster/orders/abcd"}
	src := config.EventSource{Brokers: []string{"b-1:9098", "b-2:9098"}}
	f, _ := BuiltinFor(config.HandlerHTTP, src, nil)
	h, err := f(handler.Deps{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	b := lambdaBatch(42, 43, 44)
	err = h.Handle(context.Background(), b)
	it, ok := errors.AsType[*handler.ItemFailures](err)
	if !ok || !slices.Equal(it.Offsets, []int64{43}) {
		t.Fatalf("got %v, want offset 43 failed", err)
	}
	want, _ := mskevent.New(mskevent.Options{ClusterARN: cfg.KafkaClusterARN, BootstrapServers: src.Brokers}).
		Append(nil, "orders", 3, b.Records, 0)
	if !bytes.Equal(got, want) {
		t.Fatalf("body:\n got %s\nwant %s", got, want)
	}

	answer = `{"batchItemFailures":[{"itemIdentifier":"44"}]}`
	if it, ok := errors.AsType[*handler.ItemFailures](h.Handle(context.Background(), b)); !ok || !slices.Equal(it.Offsets, []int64{44}) {
		t.Fatalf("string identifier: %v", it)
	}
	answer = `{"batchItemFailures":[{"itemIdentifier":{"partition":"orders-9","offset":43}}]}`
	if err := h.Handle(context.Background(), b); !errors.Is(err, ErrInvalidResponse) {
		t.Fatalf("other partition: %v", err)
	}
	// A function error behind an HTTP server is a 5xx: the batch failed.
	status, answer = http.StatusInternalServerError, `{"errorType":"ValueError","errorMessage":"bad"}`
	err = h.Handle(context.Background(), b)
	if err == nil || errors.Is(err, handler.ErrUnavailable) || errors.Is(err, handler.ErrPermanent) {
		t.Fatalf("5xx: %v, want a failed batch", err)
	}
}
