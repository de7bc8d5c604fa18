package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/msk-consumer/msk-consumer/config"
)

// The golden Avro vectors in testdata/ are made by TestGenerateGolden:
//
//	go test -run TestGenerateGolden -update ./internal/codec/
//
// It encodes productSamples with twmb/avro against testdata/product.avsc
// and writes product_<name>.bin (the record) and product_<name>.json (what
// the decoder must turn it into). Map order on the wire follows Go's map
// iteration, so a vector is rewritten only when its content changed.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

type productSample struct {
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

// expectedJSON is the JSON a sample must decode to, built without the code
// under test.
func (p productSample) expectedJSON() []byte {
	tags := p.Tags
	if tags == nil {
		tags = []string{}
	}
	attrs := p.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	var price any = p.Price
	switch {
	case math.IsNaN(p.Price):
		price = "NaN"
	case math.IsInf(p.Price, 1):
		price = "Infinity"
	case math.IsInf(p.Price, -1):
		price = "-Infinity"
	}
	b, err := json.Marshal(map[string]any{
		"id": p.ID, "sku": p.SKU, "name": p.Name, "price": price,
		"currency": p.Currency, "tags": tags, "attributes": attrs,
		"description": p.Description, "updated_at": p.UpdatedAt.UnixMilli(),
	})
	if err != nil {
		panic(err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }

var productSamples = map[string]productSample{
	// About 200 bytes: a typical catalog event.
	"small": {
		ID: 42, SKU: "SKU-000042", Name: "Espresso machine, 15 bar, stainless steel",
		Price: 249.99, Currency: "EUR",
		Tags:       []string{"kitchen", "coffee", "appliance", "sale"},
		Attributes: map[string]string{"color": "silver", "voltage": "230V", "warranty": "2 years", "weight": "6.4 kg"},
		Description: ptr("Pump espresso machine with a steam wand, a 1.5 l " +
			"removable tank and a cup warmer."),
		UpdatedAt: time.Date(2026, 11, 22, 11, 30, 0, 123e6, time.UTC),
	},
	// About 1 KB: a product with a long description and many attributes.
	"large": {
		ID: 9_007_199_254_740_993, SKU: "SKU-LX-2026-000777", Name: "Ergonomic office chair with adjustable lumbar support and headrest",
		Price: 1299.5, Currency: "USD",
		Tags: []string{"office", "furniture", "chair", "ergonomic", "lumbar", "headrest", "mesh",
			"adjustable", "swivel", "castors", "bestseller", "new-arrival", "b2b", "eco", "warranty-5y"},
		Attributes: map[string]string{
			"color": "graphite", "material": "recycled polyester mesh", "frame": "aluminium",
			"max_load": "150 kg", "seat_height": "42-53 cm", "seat_depth": "44-50 cm",
			"armrests": "4D adjustable", "tilt": "synchro, 4 positions", "castors": "hard floor, 65 mm",
			"certification": "EN 1335, BIFMA X5.1", "assembly": "required, 20 minutes",
			"country_of_origin": "PT", "ean": "5601234567890", "weight": "19.8 kg", "warranty": "5 years",
		},
		Description: ptr(strings.Repeat("A breathable mesh back follows the spine; the seat slides "+
			"and tilts so that you sit upright through long working days. ", 3) +
			"Assembly takes about twenty minutes with the tool included."),
		UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC),
	},
	// Every field at its zero: empty strings, collections and a null union.
	"minimal": {Currency: "EUR", UpdatedAt: time.UnixMilli(0).UTC()},
	// Values at the edges of their types, and text that needs escaping.
	"edge": {
		ID: math.MinInt64, SKU: "ß-\u00e9-\U0001F600", Name: "quote \" backslash \\ tab \t newline \n nul \x00 <a>&\u2028",
		Price: 1e21, Currency: "JPY",
		Tags:        []string{"", " ", "\U0001F4A9", "日本語"},
		Attributes:  map[string]string{"": "empty key", "key \"quoted\"": "value\r\n"},
		Description: ptr(""),
		UpdatedAt:   time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC),
	},
	// NaN has no JSON number: it is the string "NaN".
	"nan": {ID: -1, SKU: "x", Name: "y", Price: math.NaN(), Currency: "GBP", UpdatedAt: time.UnixMilli(-1).UTC()},
}

func TestGenerateGolden(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/")
	}
	schema := mustSchemaFile(t, productSchemaFile)
	oracle := avroMapDecoder{schema}
	dec, err := newAvro(schema)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range productSamples {
		binPath := filepath.Join("testdata", "product_"+name+".bin")
		bin, err := schema.Encode(&p)
		if err != nil {
			t.Fatalf("%s: encode: %v", name, err)
		}
		// Keep the old vector when it holds the same record: the bytes may
		// differ only in map order.
		if old, err := os.ReadFile(binPath); err == nil {
			var a, b productSample
			if _, err := schema.Decode(old, &a); err == nil {
				if _, err := schema.Decode(bin, &b); err == nil && sameProduct(a, b) {
					bin = old
				}
			}
		}
		out, err := dec.AppendJSON(context.Background(), nil, bin)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if want := p.expectedJSON(); !sameJSON(t, out, want) {
			t.Fatalf("%s: got %s, want %s", name, out, want)
		}
		if want, err := oracle.AppendJSON(context.Background(), nil, bin); err != nil || !sameJSON(t, out, want) {
			t.Fatalf("%s: got %s, oracle says %s (%v)", name, out, want, err)
		}
		if err := os.WriteFile(binPath, bin, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(strings.TrimSuffix(binPath, ".bin")+".json", append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes of Avro, %d of JSON", name, len(bin), len(out))
	}
}

// sameProduct compares decoded samples, NaN equal to NaN.
func sameProduct(a, b productSample) bool {
	if math.IsNaN(a.Price) && math.IsNaN(b.Price) {
		a.Price, b.Price = 0, 0
	}
	return reflect.DeepEqual(a, b)
}

func TestGolden(t *testing.T) {
	dec, err := New(config.Codec{Format: config.FormatAvro, SchemaFile: productSchemaFile})
	if err != nil {
		t.Fatal(err)
	}
	oracle := avroMapDecoder{mustSchemaFile(t, productSchemaFile)}
	bins, _ := filepath.Glob("testdata/product_*.bin")
	if len(bins) != len(productSamples) {
		t.Fatalf("got %d golden vectors, want %d: run TestGenerateGolden -update", len(bins), len(productSamples))
	}
	for _, binPath := range bins {
		name := strings.TrimSuffix(filepath.Base(binPath), ".bin")
		t.Run(name, func(t *testing.T) {
			bin, err := os.ReadFile(binPath)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(binPath, ".bin") + ".json")
			if err != nil {
				t.Fatal(err)
			}
			want = bytes.TrimSuffix(want, []byte("\n"))
			prefix := []byte("prefix:")
			got, err := dec.AppendJSON(context.Background(), prefix, bin)
			if err != nil {
				t.Fatalf("got error %v, want %s", err, want)
			}
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("got %q, want it to start with what dst held", got)
			}
			if got = got[len(prefix):]; !bytes.Equal(got, want) {
				t.Errorf("got %s, want %s", got, want)
			}
			if p, ok := productSamples[strings.TrimPrefix(name, "product_")]; !ok {
				t.Errorf("no sample for %s", name)
			} else if want := p.expectedJSON(); !sameJSON(t, got, want) {
				t.Errorf("got %s, want the same value as %s", got, want)
			}
			if o, err := oracle.AppendJSON(context.Background(), nil, bin); err != nil || !sameJSON(t, got, o) {
				t.Errorf("got %s, oracle says %s (%v)", got, o, err)
			}
		})
	}
}

// goldenBin reads one golden record.
func goldenBin(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "product_"+name+".bin"))
	if err != nil {
		tb.Fatal(fmt.Errorf("%w (run TestGenerateGolden -update)", err))
	}
	return b
}
