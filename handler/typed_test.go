package handler

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/msk-consumer/msk-consumer/config"
)

type item struct {
	SKU   string `json:"sku" avro:"sku"`
	Price int64  `json:"price" avro:"price"`
}

var errNegative = errors.New("negative price")

func (i *item) Validate() error {
	if i.Price < 0 {
		return errNegative
	}
	return nil
}

func rec(off int64, value string, raw []byte) Record {
	r := Record{Raw: &kgo.Record{Offset: off, Value: raw}}
	if value != "" {
		r.Value = json.RawMessage(value)
	} else {
		r.Value = json.RawMessage("null")
	}
	return r
}

func TestTyped(t *testing.T) {
	batch := Batch{Topic: "t", Records: []Record{
		rec(10, `{"sku":"a","price":1}`, []byte("x")),
		rec(11, `{"sku":"b","price":-1}`, []byte("x")),
		rec(12, `{"sku":3}`, []byte("x")),
		rec(13, "", nil),
		rec(14, `{"sku":"e","price":5}`, []byte("x")),
	}}
	errDown := errors.New("db down")
	tests := []struct {
		name        string
		batch       Batch // the batch above when empty
		fnErr       error
		want        class
		wantOffsets []int64
		wantInvalid []int64
		wantIs      []error
	}{
		{name: "ok", want: classPartial, wantInvalid: []int64{11, 12}, wantIs: []error{errNegative}},
		{name: "partial", fnErr: &ItemFailures{Offsets: []int64{14}}, want: classPartial, wantOffsets: []int64{14}, wantInvalid: []int64{11, 12}},
		// The whole batch, invalid records included, is handed back: it
		// is retried or bisected, and the invalid records are reported
		// once fn succeeds on a part that holds them.
		{name: "batch failed", fnErr: errDown, want: classFailed, wantIs: []error{errDown}},
		{name: "rejected", fnErr: Permanent(errDown), want: classRejected, wantIs: []error{ErrPermanent, errDown}},
		{name: "unavailable", fnErr: Unavailable(errDown), want: classUnavailable, wantIs: []error{ErrUnavailable, errDown}},
		{
			name:  "unavailable, no invalid record",
			batch: Batch{Topic: "t", Records: []Record{batch.Records[0], batch.Records[3], batch.Records[4]}},
			fnErr: Unavailable(errDown), want: classUnavailable, wantIs: []error{ErrUnavailable, errDown},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.batch
			if b.Records == nil {
				b = batch
			}
			var got []TypedRecord[item]
			h := Typed(JSONValue[item](), func(_ context.Context, b TypedBatch[item]) error {
				got = b.Records
				return tt.fnErr
			})
			err := h.Handle(context.Background(), b)
			if len(got) != 3 || got[0].Value.SKU != "a" || !got[1].Tombstone || got[2].Value.Price != 5 {
				t.Errorf("got records %+v, want offsets 10, 13 (tombstone), 14", got)
			}
			if c := classOf(err); c != tt.want {
				t.Fatalf("got %s (%v), want %s", c, err, tt.want)
			}
			for _, is := range tt.wantIs {
				if !errors.Is(err, is) {
					t.Errorf("got %v, want it to wrap %v", err, is)
				}
			}
			var items *ItemFailures
			if !errors.As(err, &items) {
				return
			}
			if !slices.Equal(items.Invalid, tt.wantInvalid) || !slices.Equal(items.Offsets, tt.wantOffsets) {
				t.Errorf("got invalid %v offsets %v, want %v %v", items.Invalid, items.Offsets, tt.wantInvalid, tt.wantOffsets)
			}
		})
	}
}

func TestTypedFastPaths(t *testing.T) {
	confluent := func(payload []byte, index ...byte) []byte {
		return append(append([]byte{0, 0, 0, 0, 7}, index...), payload...)
	}
	t.Run("avro", func(t *testing.T) {
		s := avro.MustParse(`{"type":"record","name":"Item","fields":[{"name":"sku","type":"string"},{"name":"price","type":"long"}]}`)
		bin, err := s.Encode(&item{SKU: "a", Price: 3})
		if err != nil {
			t.Fatal(err)
		}
		dec := AvroValue[item](s, config.RegistryConfluent)
		r := rec(1, `{}`, confluent(bin))
		if v, err := dec(&r); err != nil || v != (item{"a", 3}) {
			t.Fatalf("got (%+v, %v)", v, err)
		}
		r = rec(1, `{}`, confluent(append(bin, 0)))
		if _, err := dec(&r); err == nil {
			t.Fatal("got no error for a byte left over")
		}
	})
	t.Run("protobuf", func(t *testing.T) {
		want := timestamppb.New(timestamppb.Now().AsTime())
		bin, err := proto.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		dec := ProtoValue[*timestamppb.Timestamp](config.RegistryConfluent)
		r := rec(1, `{}`, confluent(bin, 0))
		if v, err := dec(&r); err != nil || !proto.Equal(v, want) {
			t.Fatalf("got (%v, %v), want %v", v, err, want)
		}
		r = rec(1, `{}`, []byte{1, 2})
		if _, err := dec(&r); err == nil {
			t.Fatal("got no error for bad framing")
		}
	})
}
