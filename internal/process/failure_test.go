package process

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/msk-consumer/msk-consumer/handler"
)

// TestAttemptsCountOnlyFailedAttempts: dlq.attempts counts the handler
// attempts that failed the record; attempts that found the handler
// unavailable are not counted (HANDLER_MAX_ATTEMPTS=3 here).
func TestAttemptsCountOnlyFailedAttempts(t *testing.T) {
	unavailable := handler.Unavailable(errors.New("503"))
	tests := []struct {
		name   string
		answer func(call int, b handler.Batch) error
		age    time.Duration // HANDLER_MAX_RECORD_AGE, 0: none
		want   string        // offset:kind:attempts of each copy
	}{
		{"failed batch after one unavailable", func(call int, _ handler.Batch) error {
			if call == 1 {
				return unavailable
			}
			return errors.New("500")
		}, 0, "[100:handler:3]"},
		{"unavailable between failures", func(call int, _ handler.Batch) error {
			if call == 2 || call == 3 {
				return unavailable
			}
			return errors.New("500")
		}, 0, "[100:handler:3]"},
		{"item failures after one unavailable", func(call int, b handler.Batch) error {
			if call == 1 {
				return unavailable
			}
			return &handler.ItemFailures{Offsets: []int64{b.Records[0].Raw.Offset}}
		}, 0, "[100:handler:3]"},
		{"invalid after one unavailable", func(call int, b handler.Batch) error {
			if call == 1 {
				return unavailable
			}
			return &handler.ItemFailures{Invalid: []int64{b.Records[0].Raw.Offset}}
		}, 0, "[100:validation:1]"},
		{"expired while only unavailable", func(int, handler.Batch) error { return unavailable },
			time.Minute, "[100:expired:0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				h := handlerFunc(func(_ context.Context, b handler.Batch) error {
					calls++
					return tt.answer(calls, b)
				})
				d := &fakeDLQ{}
				p, m := newProc(t, h, d, nil, nil)
				p.cfg.MaxRecordAge = tt.age
				recs := records(1, nil)
				recs[0].Timestamp = time.Now().Add(-time.Hour)
				if n, err := p.Process(context.Background(), recs, m); n != 1 || err != nil {
					t.Fatalf("Process: got %d %v", n, err)
				}
				var got []string
				for _, f := range d.written {
					got = append(got, fmt.Sprintf("%d:%s:%d", f.Record.Offset, f.Kind, f.Attempts))
				}
				if fmt.Sprint(got) != tt.want {
					t.Fatalf("dead letters (offset:kind:attempts): got %v, want %s", got, tt.want)
				}
			})
		})
	}
}
