package process

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/dlq"
)

// copiesDLQ keeps offset:kind:message of every failure written.
type copiesDLQ struct{ copies []string }

func (d *copiesDLQ) Write(_ context.Context, fs []dlq.Failure, _ dlq.OnError) error {
	for _, f := range fs {
		d.copies = append(d.copies, fmt.Sprintf("%d:%s:%s", f.Record.Offset, f.Kind, f.Err))
	}
	return nil
}

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

// TestEachCopyCarriesItsOwnRecordsError: with item failures, each
// dead-letter copy carries its own record's error (ItemFailures.RecordErrs),
// else the handler's reason (Err), never the batch's list of failed
// offsets nor another record's reason: with a batch of n failed records,
// the messages grow with n, not n².
func TestEachCopyCarriesItsOwnRecordsError(t *testing.T) {
	tests := []struct {
		name   string
		answer func(b handler.Batch) error
		age    time.Duration
		want   string // offset:kind:message of each copy
	}{
		{"own errors, else the reason", func(b handler.Batch) error {
			return &handler.ItemFailures{
				Offsets:    []int64{100, 101, 102},
				Invalid:    []int64{103},
				Err:        errors.New("4 records failed"),
				RecordErrs: map[int64]error{100: errors.New("price missing"), 103: errors.New("sku empty")},
			}
		}, 0, "[100:handler:price missing 101:handler:4 records failed 102:handler:4 records failed 103:validation:sku empty]"},
		{"neither own errors nor a reason", func(b handler.Batch) error {
			return &handler.ItemFailures{Offsets: []int64{100, 101}, Invalid: []int64{102}}
		}, 0, "[100:handler:the handler reported the record failed 101:handler:the handler reported the record failed 102:validation:the handler reported the record invalid]"},
		{"expired", func(b handler.Batch) error {
			return &handler.ItemFailures{Offsets: []int64{100, 101}, RecordErrs: map[int64]error{100: errors.New("a"), 101: errors.New("b")}}
		}, time.Minute, "[100:expired:older than HANDLER_MAX_RECORD_AGE (1m0s) and its handling failed: a 101:expired:older than HANDLER_MAX_RECORD_AGE (1m0s) and its handling failed: b]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := handlerFunc(func(_ context.Context, b handler.Batch) error {
					// Only the offsets of this batch: the retries hold
					// fewer records.
					items := tt.answer(b).(*handler.ItemFailures)
					in := func(o int64) bool {
						return slices.ContainsFunc(b.Records, func(r handler.Record) bool { return r.Raw.Offset == o })
					}
					items.Offsets = slices.DeleteFunc(items.Offsets, func(o int64) bool { return !in(o) })
					items.Invalid = slices.DeleteFunc(items.Invalid, func(o int64) bool { return !in(o) })
					return items
				})
				d := &copiesDLQ{}
				p, m := newProc(t, h, d, nil, nil)
				p.cfg.MaxRecordAge = tt.age
				recs := records(4, nil)
				for _, r := range recs {
					r.Timestamp = time.Now().Add(-time.Hour)
				}
				b, err := p.Handle(context.Background(), "t/0", nil, recs, m)
				if err != nil {
					t.Fatal(err)
				}
				if err := b.Write(context.Background(), nil); err != nil {
					t.Fatal(err)
				}
				b.Close()
				if fmt.Sprint(d.copies) != tt.want {
					t.Fatalf("dead letters (offset:kind:message):\n got %v\nwant %s", d.copies, tt.want)
				}
			})
		})
	}
}
