package handler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestTypedRecordErrs: each record a Typed handler reports carries its own
// error in RecordErrs, so that its dead-letter copy says why it, not the
// batch's first invalid record, failed; fn's item failures keep theirs.
func TestTypedRecordErrs(t *testing.T) {
	batch := Batch{Topic: "t", Records: []Record{
		rec(10, `{"sku":"a","price":1}`, []byte("x")),
		rec(11, `{"sku":"b","price":-1}`, []byte("x")),
		rec(12, `{"sku":3}`, []byte("x")),
		rec(13, `{"sku":"d","price":1}`, []byte("x")),
		rec(14, `{"sku":"e","price":5}`, []byte("x")),
	}}
	errStock := errors.New("out of stock")
	tests := []struct {
		name  string
		fnErr error
		want  map[int64]string // offset: the start of its error
	}{
		{"invalid only", nil, map[int64]string{11: "negative price", 12: ErrNotDecodable.Error()}},
		{"with fn's item failures", &ItemFailures{
			Offsets:    []int64{13, 14},
			Err:        errors.New("2 records failed"),
			RecordErrs: map[int64]error{14: errStock},
		}, map[int64]string{11: "negative price", 12: ErrNotDecodable.Error(), 13: "2 records failed", 14: "out of stock"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Typed(JSONValue[item](), func(context.Context, TypedBatch[item]) error { return tt.fnErr })
			var items *ItemFailures
			if err := h.Handle(context.Background(), batch); !errors.As(err, &items) {
				t.Fatalf("got %v, want *ItemFailures", err)
			}
			if len(items.RecordErrs) != len(tt.want) {
				t.Fatalf("got record errors %v, want %v", items.RecordErrs, tt.want)
			}
			for off, want := range tt.want {
				if got := fmt.Sprint(items.RecordErrs[off]); !strings.HasPrefix(got, want) {
					t.Errorf("offset %d: got %q, want it to start with %q", off, got, want)
				}
			}
		})
	}
}
