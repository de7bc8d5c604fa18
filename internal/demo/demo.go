// Package demo produces sample product events for `consumer demo` and for
// benchmarks: Avro records of a catalog's products, with a deliberate share
// of undecodable ones so that the dead-letter path is visible.
package demo

import (
	_ "embed"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Schema is the Avro schema of the product events (product.avsc).
//
//go:embed product.avsc
var Schema string

// Product is one product event, as the schema describes it.
type Product struct {
	ID          int64             `avro:"id"`
	SKU         string            `avro:"sku"`
	Name        string            `avro:"name"`
	Price       float64           `avro:"price"`
	Currency    string            `avro:"currency"`
	Tags        []string          `avro:"tags"`
	Attributes  map[string]string `avro:"attributes"`
	Description *string           `avro:"description"`
	UpdatedAt   time.Time         `avro:"updated_at"`
}

// Generator makes product event records. It is not safe for concurrent use.
type Generator struct {
	schema *avro.Schema
	rng    *rand.Rand
	// BadEvery makes every BadEvery-th record undecodable (0: none).
	BadEvery int
	// Pad adds a description of this many bytes, to size records.
	Pad int
	n   int64
}

var (
	names      = []string{"Trail Shoe", "Rain Jacket", "Wool Socks", "Day Pack", "Water Bottle", "Headlamp", "Fleece", "Gaiters"}
	currencies = []string{"EUR", "USD", "GBP", "JPY"}
	tags       = []string{"outdoor", "sale", "new", "bestseller", "eco"}
)

// NewGenerator returns a Generator with a fixed seed, so runs are repeatable.
func NewGenerator(seed uint64) (*Generator, error) {
	s, err := avro.Parse(Schema)
	if err != nil {
		return nil, err
	}
	return &Generator{schema: s, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}, nil
}

// Next returns the next record for topic: key "SKU-<id>", an Avro value, a
// trace-id header. It reports whether the value was made undecodable.
func (g *Generator) Next(topic string) (*kgo.Record, bool, error) {
	g.n++
	id := g.n
	p := Product{
		ID:         id,
		SKU:        fmt.Sprintf("SKU-%06d", id),
		Name:       names[g.rng.IntN(len(names))],
		Price:      float64(g.rng.IntN(20000)) / 100,
		Currency:   currencies[g.rng.IntN(len(currencies))],
		Tags:       []string{tags[g.rng.IntN(len(tags))]},
		Attributes: map[string]string{"color": "blue"},
		UpdatedAt:  time.UnixMilli(1_795_000_000_000 + id*1000).UTC(),
	}
	if g.Pad > 0 {
		d := strings.Repeat("lorem ipsum ", g.Pad/12+1)[:g.Pad]
		p.Description = &d
	}
	value, err := g.schema.Encode(&p)
	if err != nil {
		return nil, false, err
	}
	bad := g.BadEvery > 0 && id%int64(g.BadEvery) == 0
	if bad {
		if (id/int64(g.BadEvery))%2 == 0 {
			value = value[:len(value)/2] // truncated mid-record
		} else {
			value = append(value, 0xde, 0xad) // bytes left over after the record
		}
	}
	return &kgo.Record{
		Topic:   topic,
		Key:     []byte(p.SKU),
		Value:   value,
		Headers: []kgo.RecordHeader{{Key: "trace-id", Value: fmt.Appendf(nil, "t-%d", id)}},
	}, bad, nil
}
