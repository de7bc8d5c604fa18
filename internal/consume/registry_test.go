package consume

import (
	"encoding/binary"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/msk-consumer/msk-consumer/internal/dlq"
)

// Three versions of one Avro schema: v2 adds price, v3 adds a currency.
// The service reads with v3 (the schema file), resolving what v1 and v2
// wrote.
const (
	productV1 = `{"type":"record","name":"Product","fields":[{"name":"id","type":"long"},{"name":"sku","type":"string"}]}`
	productV2 = `{"type":"record","name":"Product","fields":[{"name":"id","type":"long"},{"name":"sku","type":"string"},{"name":"price","type":"double","default":0}]}`
	productV3 = `{"type":"record","name":"Product","fields":[{"name":"id","type":"long"},{"name":"sku","type":"string"},{"name":"price","type":"double","default":0},{"name":"currency","type":"string","default":"EUR"}]}`
)

// confluentAvro frames v encoded with schema as the Confluent wire format:
// magic byte 0, the schema id big-endian, the Avro binary.
func confluentAvro(t *testing.T, id int, schema string, v any) []byte {
	t.Helper()
	s, err := avro.Parse(schema)
	if err != nil {
		t.Fatal(err)
	}
	body, err := s.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	out := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(out[1:], uint32(id))
	return append(out, body...)
}

// TestConfluentRegistryPipeline: Confluent-framed Avro of several schema
// versions in one topic, resolved to the reader schema; an unknown schema id
// dead-lettered as a decode failure naming the id; a registry outage
// mid-stream holding the partition (nothing dead-lettered for it, readiness
// 503) until the registry is back; one registry call per schema id.
func TestConfluentRegistryPipeline(t *testing.T) {
	reg := srfake.New()
	t.Cleanup(reg.Close)
	var down atomic.Bool
	idCalls := map[string]*atomic.Int64{"1": {}, "2": {}, "3": {}, "99": {}}
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if id, ok := strings.CutPrefix(r.URL.Path, "/schemas/ids/"); ok {
			if n := idCalls[strings.TrimSuffix(id, "/")]; n != nil {
				n.Add(1)
			}
		}
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error_code":50003,"message":"down for the test"}`))
			return true
		}
		return false
	})
	for i, s := range []string{productV1, productV2, productV3} {
		reg.SeedSchema("products-value", i+1, i+1, sr.Schema{Schema: s, Type: sr.TypeAvro})
	}
	reader := filepath.Join(t.TempDir(), "product.avsc")
	if err := os.WriteFile(reader, []byte(productV3), 0o600); err != nil {
		t.Fatal(err)
	}

	c := startCluster(t, 1)
	cl := newClient(t, c)
	cfg := c.config(t, map[string]string{
		"VALUE_FORMAT": "avro", "VALUE_SCHEMA_REGISTRY": "confluent", "VALUE_SCHEMA_FILE": reader,
		"SCHEMA_REGISTRY_URL": reg.URL(), "UNREADY_AFTER": "300ms", "HANDLER_RETRY_BACKOFF": "20ms",
	})
	var log sharedLog
	m := start(t, cfg, log.recorder("a"))
	waitFor(t, 20*time.Second, "the group to be joined", func() bool { ok, _ := m.health.Ready(); return ok })

	type v1 struct {
		ID  int64  `avro:"id"`
		SKU string `avro:"sku"`
	}
	type v2 struct {
		ID    int64   `avro:"id"`
		SKU   string  `avro:"sku"`
		Price float64 `avro:"price"`
	}
	type v3 struct {
		ID       int64   `avro:"id"`
		SKU      string  `avro:"sku"`
		Price    float64 `avro:"price"`
		Currency string  `avro:"currency"`
	}
	// Before the outage: v1 and v2 interleaved, and one unknown id.
	p := produce(t, c, cl, 40, func(i int) []byte {
		switch {
		case i == 13:
			return confluentAvro(t, 99, productV1, &v1{ID: int64(i), SKU: "sku-" + strconv.Itoa(i)})
		case i%2 == 0:
			return confluentAvro(t, 1, productV1, &v1{ID: int64(i), SKU: "sku-" + strconv.Itoa(i)})
		default:
			return confluentAvro(t, 2, productV2, &v2{ID: int64(i), SKU: "sku-" + strconv.Itoa(i), Price: float64(i) + 0.5})
		}
	})
	dead := readDLQ(t, c, 1)
	if msg := header(dead[0], dlq.HeaderMessage); header(dead[0], dlq.HeaderKind) != "decode" || !strings.Contains(msg, "schema id 99") {
		t.Fatalf("dead letter: kind %q message %q, want decode naming schema id 99", header(dead[0], dlq.HeaderKind), msg)
	}
	waitFor(t, 20*time.Second, "39 deliveries", func() bool { return len(log.snapshot()) == 39 })

	// The outage: v3 records, whose schema id is not cached yet.
	down.Store(true)
	p2 := produce(t, c, cl, 10, func(i int) []byte {
		return confluentAvro(t, 3, productV3, &v3{ID: int64(100 + i), SKU: "sku-" + strconv.Itoa(100+i), Price: 1, Currency: "GBP"})
	})
	waitFor(t, 20*time.Second, "readiness to turn 503 on the registry", func() bool {
		ok, why := m.health.Ready()
		return !ok && strings.Contains(why, "stuck")
	})
	if got := len(log.snapshot()); got != 39 {
		t.Fatalf("deliveries during the outage: got %d, want 39", got)
	}
	down.Store(false)
	waitFor(t, 20*time.Second, "the records after the outage", func() bool { return len(log.snapshot()) == 49 })
	waitFor(t, 10*time.Second, "readiness back", func() bool { ok, _ := m.health.Ready(); return ok })
	for part, rs := range p2 {
		p[part] = append(p[part], rs...)
	}
	checkCommittedAtEnd(t, c, cl, p)
	// Nothing else was dead-lettered, and no schema id was fetched twice
	// once the registry answered (ids 3 and 99 were asked again only
	// while it failed or said not found).
	readDLQ(t, c, 1)
	if n := idCalls["1"].Load(); n != 1 {
		t.Fatalf("schema id 1 fetched %d times, want once", n)
	}
	if n := idCalls["2"].Load(); n != 1 {
		t.Fatalf("schema id 2 fetched %d times, want once", n)
	}

	// Every record resolved to the reader schema: v1 and v2 get the
	// defaults they lack.
	for _, d := range log.snapshot() {
		var got v3json
		if err := json.Unmarshal([]byte(d.value), &got); err != nil {
			t.Fatalf("offset %d: %v: %s", d.offset, err, d.value)
		}
		want := v3json{ID: d.offset, SKU: "sku-" + strconv.FormatInt(d.offset, 10), Currency: "EUR"}
		switch {
		case d.offset >= 40:
			want = v3json{ID: 100 + d.offset - 40, SKU: "sku-" + strconv.FormatInt(100+d.offset-40, 10), Price: 1, Currency: "GBP"}
		case d.offset%2 == 1:
			want.Price = float64(d.offset) + 0.5
		}
		if got != want {
			t.Fatalf("offset %d: got %+v, want %+v", d.offset, got, want)
		}
	}
}

type v3json struct {
	ID       int64   `json:"id"`
	SKU      string  `json:"sku"`
	Price    float64 `json:"price"`
	Currency string  `json:"currency"`
}
