package example

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/msk-consumer/msk-consumer/handler"
)

func batch(values ...string) handler.Batch {
	b := handler.Batch{Topic: "products", Partition: 2}
	for i, v := range values {
		r := handler.Record{Raw: &kgo.Record{Topic: "products", Partition: 2, Offset: int64(100 + i)}}
		if v != "" {
			r.Value = json.RawMessage(v)
		}
		b.Records = append(b.Records, r)
	}
	return b
}

func TestHandle(t *testing.T) {
	const (
		valid    = `{"id":1,"sku":"SKU-000001","name":"Mug","price":9.5,"currency":"EUR"}`
		free     = `{"id":2,"sku":"SKU-000002","name":"Sticker","price":0,"currency":"EUR"}`
		negative = `{"id":3,"sku":"SKU-000003","name":"Refund","price":-1.25,"currency":"EUR"}`
		noSKU    = `{"id":4,"name":"Nameless","price":3,"currency":"EUR"}`
		notJSON  = `{"id":5,`
		wrongTyp = `{"id":"six","sku":"SKU-000006","price":1}`
	)
	tests := []struct {
		name        string
		batch       handler.Batch
		wantInvalid []int64 // nil: the batch succeeds
		wantIs      error
		wantFields  map[string]any
	}{
		{
			name:       "all valid",
			batch:      batch(valid, free),
			wantFields: map[string]any{"records": int64(2), "upserted": int64(2), "deleted": int64(0), "rejected": int64(0)},
		},
		{
			name:       "tombstones",
			batch:      batch("", "null", valid),
			wantFields: map[string]any{"records": int64(3), "upserted": int64(1), "deleted": int64(2), "rejected": int64(0)},
		},
		{
			name:        "negative price",
			batch:       batch(valid, negative, free),
			wantInvalid: []int64{101},
			wantIs:      ErrInvalidProduct,
			wantFields:  map[string]any{"upserted": int64(2), "rejected": int64(1)},
		},
		{
			name:        "invalid records",
			batch:       batch(notJSON, valid, noSKU, wrongTyp, negative),
			wantInvalid: []int64{100, 102, 103, 104},
			wantIs:      handler.ErrNotDecodable, // the first, at 100
			wantFields:  map[string]any{"records": int64(5), "upserted": int64(1), "rejected": int64(4)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zap.InfoLevel)
			h, err := New(handler.Deps{Logger: zap.New(core)})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			err = h.Handle(t.Context(), tt.batch)

			var items *handler.ItemFailures
			switch {
			case tt.wantInvalid == nil && err != nil:
				t.Errorf("got %v, want nil", err)
			case tt.wantInvalid != nil && !errors.As(err, &items):
				t.Errorf("got %v, want *handler.ItemFailures", err)
			case tt.wantInvalid != nil:
				// Invalid, never Offsets: dead-lettered as validation
				// failures at once, not retried.
				if !slices.Equal(items.Invalid, tt.wantInvalid) || len(items.Offsets) != 0 {
					t.Errorf("got invalid %v offsets %v, want invalid %v and no offsets", items.Invalid, items.Offsets, tt.wantInvalid)
				}
				if !errors.Is(err, tt.wantIs) {
					t.Errorf("got %v, want it to wrap %v", err, tt.wantIs)
				}
			}

			entries := logs.FilterMessage("batch handled").All()
			if len(entries) != 1 {
				t.Fatalf("got %d summaries, want 1", len(entries))
			}
			fields := entries[0].ContextMap()
			if fields["topic"] != "products" || fields["partition"] != int32(2) {
				t.Errorf("got topic %v partition %v, want products 2", fields["topic"], fields["partition"])
			}
			for k, want := range tt.wantFields {
				if got := fields[k]; got != want {
					t.Errorf("%s: got %v (%T), want %v (%T)", k, got, got, want, want)
				}
			}
		})
	}
}

func TestHandleCanceled(t *testing.T) {
	h, err := New(handler.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := h.Handle(ctx, batch(`{"sku":"a"}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}
