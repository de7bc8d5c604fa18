package consume

import (
	"testing"
	"time"

	"github.com/msk-consumer/msk-consumer/config"
)

// TestHandlerTimeout: a call counts as a stall only past the handler's own
// timeout (the contract's UNREADY_AFTER): the http handler's, the lambda
// handler's for every invocation a batch may be cut into, none for Go.
func TestHandlerTimeout(t *testing.T) {
	for _, tt := range []struct {
		name     string
		cfg      config.Handler
		maxBytes int
		want     time.Duration
	}{
		{name: "go handler", cfg: config.Handler{Name: "orders"}, maxBytes: 4 << 20, want: 0},
		{name: "http", cfg: config.Handler{Name: config.HandlerHTTP, HTTPTimeout: 7 * time.Second}, maxBytes: 4 << 20, want: 7 * time.Second},
		{name: "http default", cfg: config.Handler{Name: config.HandlerHTTP}, maxBytes: 4 << 20, want: config.DefaultHTTPHandlerTimeout},
		{name: "lambda, one invocation", cfg: config.Handler{Name: config.HandlerLambda, LambdaTimeout: time.Minute}, maxBytes: 4 << 20, want: time.Minute},
		{name: "lambda default", cfg: config.Handler{Name: config.HandlerLambda}, maxBytes: 1 << 20, want: config.DefaultLambdaInvokeTimeout},
		{name: "lambda, a batch cut in three", cfg: config.Handler{Name: config.HandlerLambda, LambdaTimeout: time.Minute}, maxBytes: 10 << 20, want: 3 * time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := handlerTimeout(tt.cfg, tt.maxBytes); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}
