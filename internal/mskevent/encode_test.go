package mskevent

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
)

// kafkaEvent mirrors aws-lambda-go's events.KafkaEvent (events/kafka.go):
// header values are []int8, as Java's byte[] that the mapping serializes.
type kafkaEvent struct {
	EventSource      string                   `json:"eventSource"`
	EventSourceARN   string                   `json:"eventSourceArn"`
	Records          map[string][]kafkaRecord `json:"records"`
	BootstrapServers string                   `json:"bootstrapServers"`
}

type kafkaRecord struct {
	Topic         string              `json:"topic"`
	Partition     int64               `json:"partition"`
	Offset        int64               `json:"offset"`
	Timestamp     int64               `json:"timestamp"`
	TimestampType string              `json:"timestampType"`
	Key           string              `json:"key,omitempty"`
	Value         string              `json:"value,omitempty"`
	Headers       []map[string][]int8 `json:"headers"`
}

func rawRecord(off int64, key, value []byte, headers ...kgo.RecordHeader) handler.Record {
	return handler.Record{Raw: &kgo.Record{
		Topic: "AWSKafkaTopic", Partition: 0, Offset: off,
		Timestamp: time.UnixMilli(1595035749700), Key: key, Value: value, Headers: headers,
	}}
}

// TestEncodeGolden checks the event byte for byte against the shape of
// aws-lambda-go's events/testdata/kafka-event.json (the same record: its
// header bytes 118, -36, 0, 127, -128 are the signed bytes of 0x76 0xdc
// 0x00 0x7f 0x80).
func TestEncodeGolden(t *testing.T) {
	e := New(Options{
		ClusterARN:       "arn:aws:kafka:us-west-2:012345678901:cluster/ExampleMSKCluster/e9f754c6-d29a-4430-a7db-958a19fd2c54-4",
		BootstrapServers: []string{"b-2.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092", "b-1.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092"},
	})
	k := []byte("8d5596b4-1813-4238-b24b-6dad8e3d1c0c")
	recs := []handler.Record{
		rawRecord(0, k, k, kgo.RecordHeader{Key: "headerKey", Value: []byte{118, 0xdc, 0, 127, 0x80}}),
		rawRecord(1, nil, nil), // no key, a tombstone, no headers
	}
	got, n := e.Append(nil, "AWSKafkaTopic", 0, recs, 0)
	if n != 2 {
		t.Fatalf("n = %d, want 2", n)
	}
	want := `{"eventSource":"aws:kafka",` +
		`"eventSourceArn":"arn:aws:kafka:us-west-2:012345678901:cluster/ExampleMSKCluster/e9f754c6-d29a-4430-a7db-958a19fd2c54-4",` +
		`"bootstrapServers":"b-2.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092,b-1.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092",` +
		`"records":{"AWSKafkaTopic-0":[` +
		`{"topic":"AWSKafkaTopic","partition":0,"offset":0,"timestamp":1595035749700,"timestampType":"CREATE_TIME",` +
		`"key":"OGQ1NTk2YjQtMTgxMy00MjM4LWIyNGItNmRhZDhlM2QxYzBj","value":"OGQ1NTk2YjQtMTgxMy00MjM4LWIyNGItNmRhZDhlM2QxYzBj",` +
		`"headers":[{"headerKey":[118,-36,0,127,-128]}]},` +
		`{"topic":"AWSKafkaTopic","partition":0,"offset":1,"timestamp":1595035749700,"timestampType":"CREATE_TIME","value":null,"headers":[]}` +
		`]}}`
	if string(got) != want {
		t.Fatalf("event:\n got %s\nwant %s", got, want)
	}

	// It decodes as aws-lambda-go's KafkaEvent does, header bytes intact.
	var ev kafkaEvent
	if err := json.Unmarshal(got, &ev); err != nil {
		t.Fatal(err)
	}
	r := ev.Records["AWSKafkaTopic-0"][0]
	var hv []byte
	for _, c := range r.Headers[0]["headerKey"] {
		hv = append(hv, byte(c))
	}
	if !bytes.Equal(hv, []byte{118, 0xdc, 0, 127, 0x80}) {
		t.Errorf("header bytes %v", hv)
	}
	if v, _ := base64.StdEncoding.DecodeString(r.Value); !bytes.Equal(v, k) {
		t.Errorf("value %q", v)
	}
}

func TestEncodeSelfManagedAndTimestampTypes(t *testing.T) {
	e := New(Options{BootstrapServers: []string{"k1:9092"}})
	logAppend := rawRecord(5, []byte("k"), []byte("v"))
	logAppend.Raw.Topic, logAppend.Raw.Partition = "orders", 3
	logAppend.Raw.Attrs = kgo.NewRecordAttrs(kgo.RecordAttrsOpts{TimestampType: 1})
	got, _ := e.Append(nil, "orders", 3, []handler.Record{logAppend}, 0)
	want := `{"eventSource":"SelfManagedKafka","bootstrapServers":"k1:9092","records":{"orders-3":[` +
		`{"topic":"orders","partition":3,"offset":5,"timestamp":1595035749700,"timestampType":"LOG_APPEND_TIME","key":"aw==","value":"dg==","headers":[]}]}}`
	if string(got) != want {
		t.Fatalf("event:\n got %s\nwant %s", got, want)
	}
}

func TestEncodeJSONFormat(t *testing.T) {
	e := New(Options{
		Format:        FormatJSON,
		ValueRegistry: config.RegistryConfluent, ValueFormat: config.FormatAvro,
		KeyRegistry: config.RegistryNone, KeyFormat: config.FormatString,
	})
	framed := []byte{0, 0, 0, 0, 7, 2, 'x'} // confluent, schema id 7
	r := rawRecord(9, []byte("SKU-1"), framed)
	r.Key = json.RawMessage(`"SKU-1"`)
	r.Value = json.RawMessage(`{"id":42}`)
	tomb := rawRecord(10, []byte("SKU-2"), nil)
	tomb.Key, tomb.Value = json.RawMessage(`"SKU-2"`), json.RawMessage(`null`)
	got, _ := e.Append(nil, "AWSKafkaTopic", 0, []handler.Record{r, tomb}, 0)
	rec := `{"topic":"AWSKafkaTopic","partition":0,"offset":9,"timestamp":1595035749700,"timestampType":"CREATE_TIME",` +
		`"key":"` + b64(`"SKU-1"`) + `","value":"` + b64(`{"id":42}`) + `","headers":[],` +
		`"valueSchemaMetadata":{"dataFormat":"JSON","schemaId":"7"}}`
	tombRec := `{"topic":"AWSKafkaTopic","partition":0,"offset":10,"timestamp":1595035749700,"timestampType":"CREATE_TIME",` +
		`"key":"` + b64(`"SKU-2"`) + `","value":null,"headers":[]}`
	if !strings.Contains(string(got), `[`+rec+`,`+tombRec+`]`) {
		t.Fatalf("event %s\nwant records %s,%s", got, rec, tombRec)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestAppendLimit checks that events are cut below the limit, measured on
// the encoded bytes, and that a record that cannot fit alone is reported.
func TestAppendLimit(t *testing.T) {
	e := New(Options{BootstrapServers: []string{"k:9092"}})
	var recs []handler.Record
	for i := range 10 {
		recs = append(recs, rawRecord(int64(i), nil, bytes.Repeat([]byte{'a'}, 300)))
	}
	one := e.Size("AWSKafkaTopic", 0, &recs[0])
	all, n := e.Append(nil, "AWSKafkaTopic", 0, recs, 0)
	if n != 10 {
		t.Fatal(n)
	}
	for _, limit := range []int{one, one + 1, 3*one - 1, 3 * one, len(all) - 1, len(all)} {
		var off int
		rest := recs
		var buf []byte
		for len(rest) > 0 {
			var k int
			buf, k = e.Append(buf[:0], "AWSKafkaTopic", 0, rest, limit)
			if k == 0 {
				t.Fatalf("limit %d: a record of %d bytes did not fit", limit, one)
			}
			if len(buf) > limit {
				t.Fatalf("limit %d: event of %d bytes", limit, len(buf))
			}
			var ev kafkaEvent
			if err := json.Unmarshal(buf, &ev); err != nil {
				t.Fatalf("limit %d: %v", limit, err)
			}
			if got := ev.Records["AWSKafkaTopic-0"]; len(got) != k || got[0].Offset != int64(off) {
				t.Fatalf("limit %d: %d records from %d, want %d from %d", limit, len(got), got[0].Offset, k, off)
			}
			// Greedy: one more record would not have fitted.
			if k < len(rest) {
				if more, _ := e.Append(nil, "AWSKafkaTopic", 0, rest[:k+1], 0); len(more) <= limit {
					t.Fatalf("limit %d: cut at %d records, but %d fit in %d bytes", limit, k, k+1, len(more))
				}
			}
			off += k
			rest = rest[k:]
		}
	}
	out, n := e.Append([]byte("keep"), "AWSKafkaTopic", 0, recs, one-1)
	if n != 0 || string(out) != "keep" {
		t.Fatalf("a record over the limit: n=%d out=%q", n, out)
	}
}
