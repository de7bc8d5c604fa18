//go:build lambdatest

package service_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/msk-consumer/msk-consumer/service"
	"github.com/msk-consumer/msk-consumer/test/lambda/pool"
)

// The Lambda tier (make test-lambda, scripts/lambda/setup.sh) runs real
// functions in AWS's Lambda runtime interface emulator: LAMBDA_TEST_RIE is
// the emulator, LAMBDA_TEST_PYTHON the venv's python with awslambdaric and
// Powertools. Without them the tests of this file fail: the tier runs them
// by name only where it has built them.

// startEmulators starts n emulators running cmd in dir with env, and the
// proxy of test/lambda/pool in front of them (it routes each Invoke to an
// idle emulator, answers 429 TooManyRequestsException when all are busy,
// and adds X-Amz-Function-Error); their output is logged if t fails.
func startEmulators(t *testing.T, n int, dir string, env []string, cmd ...string) *pool.Proxy {
	t.Helper()
	rie := os.Getenv("LAMBDA_TEST_RIE")
	if rie == "" {
		t.Fatal("LAMBDA_TEST_RIE is not set: run make test-lambda")
	}
	emu, err := pool.Start(pool.Options{RIE: rie, N: n, Dir: dir, Env: env, Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		emu.Close()
		if t.Failed() {
			for i, u := range emu.URLs() {
				t.Logf("emulator %s:\n%s", u, emu.Log(i, 3000))
			}
		}
	})
	return pool.NewProxy(emu.URLs()...)
}

// avroOrder encodes {"id": id, "sku": sku} in the schema of
// scripts/lambda/functions/order.avsc.
func avroOrder(id int64, sku string) []byte {
	b := binaryVarint(nil, id)
	b = binaryVarint(b, int64(len(sku)))
	return append(b, sku...)
}

func binaryVarint(dst []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

// runLambda produces recs to a kfake topic, runs the service with
// HANDLER=lambda invoking through the proxy at url until the group has
// committed every record, and checks that exactly the records of wantDead
// are dead-lettered, once each, as handler, those wanted as RAISE with the
// function's error message raised(offset).
func runLambda(t *testing.T, url string, recs []*kgo.Record, extra map[string]string, wantDead map[int64]string, raised func(int64) string) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"), kfake.SeedTopics(1, "orders.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_ENDPOINT_URL_LAMBDA": url, "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"} {
		t.Setenv(k, v)
	}
	env := map[string]string{
		"KAFKA_BROKERS":         strings.Join(cluster.ListenAddrs(), ","),
		"KAFKA_TOPICS":          "orders",
		"KAFKA_GROUP_ID":        "lambda",
		"KAFKA_AUTH":            "none",
		"AWS_REGION":            "us-east-1",
		"KAFKA_COMMIT_INTERVAL": "100ms",
		"BATCH_MAX_WAIT":        "300ms",
		"BATCH_MAX_RECORDS":     "8",
		"PROCESSING_ORDER":      "key",
		"PARTITION_CONCURRENCY": "4",
		"HANDLER":               "lambda",
		"LAMBDA_FUNCTION_NAME":  "orders",
		"LAMBDA_INVOKE_TIMEOUT": "30s",
		"HANDLER_MAX_ATTEMPTS":  "2",
		"HANDLER_RETRY_BACKOFF": "20ms",
		"METRICS_ADDR":          "127.0.0.1:0",
		"LOG_LEVEL":             "warn",
	}
	for k, v := range extra {
		env[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exit := make(chan int, 1)
	var stderr lockedBuilder
	go func() {
		exit <- service.Run(ctx, service.Env{
			Args:   []string{"run"},
			Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
			Stdout: io.Discard, Stderr: &stderr,
		}, nil)
	}()

	dead := readRecords(t, cluster.ListenAddrs(), "orders.dlq", len(wantDead))

	// Commits at the end: the group's offset reaches the end of the log.
	adm := kadm.NewClient(cl)
	waitFor(t, func() bool {
		offs, err := adm.FetchOffsets(context.Background(), env["KAFKA_GROUP_ID"])
		if err != nil {
			return false
		}
		o, ok := offs.Lookup("orders", 0)
		return ok && o.At == int64(len(recs))
	})
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the service did not stop")
	}

	// Every record that should fail is dead-lettered once, as handler, with
	// the function's error for those that raised.
	seenDead := map[int64]bool{}
	for _, r := range dead {
		h := map[string]string{}
		for _, hd := range r.Headers {
			h[hd.Key] = string(hd.Value)
		}
		var off int64
		fmt.Sscan(h["dlq.original.offset"], &off)
		want, ok := wantDead[off]
		if !ok || seenDead[off] {
			t.Errorf("dead letter of offset %d (unexpected or repeated): %v", off, h)
			continue
		}
		seenDead[off] = true
		if h["dlq.error.kind"] != "handler" {
			t.Errorf("offset %d: kind %q, want handler", off, h["dlq.error.kind"])
		}
		if want == "RAISE" && !strings.Contains(h["dlq.error.message"], raised(off)) {
			t.Errorf("offset %d: message %q, want the function's error", off, h["dlq.error.message"])
		}
		if !bytes.Equal(r.Value, recs[off].Value) {
			t.Errorf("offset %d: the dead-letter copy's value is not the original", off)
		}
	}
	if len(seenDead) != len(wantDead) {
		t.Errorf("dead-lettered %v, want %v", seenDead, wantDead)
	}

}

// TestLambdaPowertoolsAvro and TestLambdaPowertoolsJSON run the service
// with HANDLER=lambda against a Python function using Powertools'
// kafka_consumer in the emulator, behind the proxy, on kfake.
func TestLambdaPowertoolsAvro(t *testing.T) { testLambdaPowertools(t, "source", "avro", false) }
func TestLambdaPowertoolsJSON(t *testing.T) { testLambdaPowertools(t, "json", "json", false) }

// TestLambdaPowertoolsRegistryJSON and TestLambdaPowertoolsRegistrySource
// run the same function on Avro records framed for a Confluent schema
// registry (franz-go's srfake serves the schema, at id 7): with
// EVENT_RECORD_FORMAT=json Powertools reads each value's
// valueSchemaMetadata {dataFormat: JSON, schemaId: "7"} and decodes the
// JSON the service decoded; with source the framed bytes reach it as they
// are, and Powertools' own Confluent wire format support decodes them.
func TestLambdaPowertoolsRegistryJSON(t *testing.T) { testLambdaPowertools(t, "json", "json", true) }
func TestLambdaPowertoolsRegistrySource(t *testing.T) {
	testLambdaPowertools(t, "source", "avro-confluent", true)
}

// orderSchemaID is the id the test registry serves order.avsc at: not 1,
// so that a schemaId taken from elsewhere would show.
const orderSchemaID = 7

// confluentFramed frames an Avro body for a Confluent schema registry:
// magic byte 0, the schema id big-endian, the body.
func confluentFramed(id uint32, body []byte) []byte {
	return append([]byte{0, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, body...)
}

func testLambdaPowertools(t *testing.T, recordFormat, fnMode string, registry bool) {
	python := os.Getenv("LAMBDA_TEST_PYTHON")
	if python == "" {
		t.Fatal("LAMBDA_TEST_PYTHON is not set: run make test-lambda")
	}
	fnDir, err := filepath.Abs("../scripts/lambda/functions")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "handled.jsonl")
	proxy := startEmulators(t, 2, fnDir, []string{"FN_MODE=" + fnMode, "FN_OUT=" + out, "FN_SLEEP=0.2", "PYTHONPATH=" + fnDir},
		python, "-m", "awslambdaric", "orders.handler")
	srv := httptest.NewServer(proxy)
	defer srv.Close()

	const n = 40
	kind := func(i int) string {
		switch {
		case i%11 == 5:
			return "RAISE"
		case i%7 == 3:
			return "FAIL"
		}
		return "SKU"
	}
	wantDead := map[int64]string{}
	for i := range n {
		if k := kind(i); k != "SKU" {
			wantDead[int64(i)] = k
		}
	}
	// 40 records: every 7th fails in batchItemFailures, every 11th makes
	// the function raise; a header with bytes over 127.
	var recs []*kgo.Record
	for i := range n {
		sku := fmt.Sprintf("%s-%03d", kind(i), i)
		v := avroOrder(int64(i), sku)
		if registry {
			v = confluentFramed(orderSchemaID, v)
		}
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%5), Value: v,
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte{'x', 0xff, byte(i)}}}})
	}
	env := map[string]string{
		"VALUE_FORMAT":        "avro",
		"VALUE_SCHEMA_FILE":   filepath.Join(fnDir, "order.avsc"),
		"EVENT_RECORD_FORMAT": recordFormat,
	}
	if registry {
		schema, err := os.ReadFile(filepath.Join(fnDir, "order.avsc"))
		if err != nil {
			t.Fatal(err)
		}
		reg := srfake.New()
		t.Cleanup(reg.Close)
		reg.SeedSchema("orders-value", 1, orderSchemaID, sr.Schema{Schema: string(schema), Type: sr.TypeAvro})
		env["VALUE_SCHEMA_REGISTRY"], env["SCHEMA_REGISTRY_URL"] = "confluent", reg.URL()
	}
	runLambda(t, srv.URL, recs, env, wantDead, func(off int64) string {
		return fmt.Sprintf("ValueError: cannot handle RAISE-%03d at offset %d", off, off)
	})

	// Every other record was handled, decoded as Powertools decodes it.
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	handled := map[int64]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Offset              int64             `json:"offset"`
			Key                 string            `json:"key"`
			Value               map[string]any    `json:"value"`
			OriginalValue       string            `json:"originalValue"`
			KeySchemaMetadata   map[string]any    `json:"keySchemaMetadata"`
			ValueSchemaMetadata map[string]any    `json:"valueSchemaMetadata"`
			Headers             map[string]string `json:"headers"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		i := line.Offset
		if _, bad := wantDead[i]; bad {
			t.Errorf("offset %d handled, want it dead-lettered", i)
		}
		wantSKU := fmt.Sprintf("SKU-%03d", i)
		if line.Value["sku"] != wantSKU || line.Value["id"] != float64(i) {
			t.Errorf("offset %d: Powertools decoded %v, want id %d sku %s", i, line.Value, i, wantSKU)
		}
		wantKey := string(recs[i].Key)
		if recordFormat == "json" {
			wantKey = `"` + wantKey + `"` // the key decoded as a JSON string
		}
		if k, _ := base64.StdEncoding.DecodeString(line.Key); string(k) != wantKey {
			t.Errorf("offset %d: key %q, want %q", i, k, wantKey)
		}
		if line.Headers["h"] != string([]rune{'x', 0xff, rune(i)}) {
			t.Errorf("offset %d: header %q", i, line.Headers["h"])
		}
		// The schema metadata: only a registry-framed value with json
		// has it, and the key (not framed) never.
		var wantMeta map[string]any
		if registry && recordFormat == "json" {
			wantMeta = map[string]any{"dataFormat": "JSON", "schemaId": strconv.Itoa(orderSchemaID)}
		}
		if !reflect.DeepEqual(line.ValueSchemaMetadata, wantMeta) {
			t.Errorf("offset %d: Powertools read valueSchemaMetadata %v, want %v", i, line.ValueSchemaMetadata, wantMeta)
		}
		if line.KeySchemaMetadata != nil {
			t.Errorf("offset %d: keySchemaMetadata %v for a key no registry framed", i, line.KeySchemaMetadata)
		}
		// With source the function gets the record's bytes as they are,
		// the registry framing included.
		if recordFormat == "source" {
			if v, err := base64.StdEncoding.DecodeString(line.OriginalValue); err != nil || !bytes.Equal(v, recs[i].Value) {
				t.Errorf("offset %d: original value %x, want the record's bytes %x", i, v, recs[i].Value)
			}
		}
		handled[i] = true
	}
	for i := range int64(n) {
		if _, bad := wantDead[i]; !bad && !handled[i] {
			t.Errorf("offset %d neither handled nor dead-lettered", i)
		}
	}
	// Four lanes against two emulators: some invocations were throttled,
	// retried, and none of them dead-lettered a record.
	t.Logf("invocations %d, throttled %d, function errors %d", proxy.Invoked.Load(), proxy.Throttled.Load(), proxy.FunctionErrors.Load())
	if proxy.Throttled.Load() == 0 {
		t.Error("no invocation was throttled: the test did not exercise throttling")
	}
	if proxy.FunctionErrors.Load() == 0 {
		t.Error("no function error")
	}
}

// TestLambdaGoFunction runs the service with HANDLER=lambda against a Go
// function built with aws-lambda-go's events.KafkaEvent
// (test/lambda/gofn, LAMBDA_TEST_GOFN) in the emulator: its records as
// the Go runtime decodes them, header bytes over 127 included.
func TestLambdaGoFunction(t *testing.T) {
	gofn := os.Getenv("LAMBDA_TEST_GOFN")
	if gofn == "" {
		t.Fatal("LAMBDA_TEST_GOFN is not set: run make test-lambda")
	}
	out := filepath.Join(t.TempDir(), "handled.jsonl")
	proxy := startEmulators(t, 2, t.TempDir(), []string{"FN_OUT=" + out}, gofn)
	srv := httptest.NewServer(proxy)
	defer srv.Close()

	const n = 30
	wantDead := map[int64]string{}
	var recs []*kgo.Record
	for i := range n {
		v := fmt.Sprintf("SKU-%03d", i)
		switch {
		case i%9 == 4:
			v, wantDead[int64(i)] = fmt.Sprintf("RAISE-%03d", i), "RAISE"
		case i%6 == 1:
			v, wantDead[int64(i)] = fmt.Sprintf("FAIL-%03d", i), "FAIL"
		}
		r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%4), Value: []byte(v),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte{0x80, 0xff, 0, byte(i)}}}}
		if i == 7 {
			r.Key = nil
		}
		recs = append(recs, r)
	}
	runLambda(t, srv.URL, recs, map[string]string{
		"VALUE_FORMAT":      "bytes",
		"KEY_FORMAT":        "bytes",
		"KAFKA_CLUSTER_ARN": "arn:aws:kafka:us-east-1:123456789012:cluster/orders/abcd",
	}, wantDead, func(off int64) string { return fmt.Sprintf("cannot handle RAISE-%03d at offset %d", off, off) })

	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	handled := map[int64]bool{}
	for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var h struct {
			Offset      int64             `json:"offset"`
			Key         string            `json:"key"`
			Value       string            `json:"value"`
			Headers     map[string][]byte `json:"headers"`
			EventSource string            `json:"eventSource"`
		}
		if err := json.Unmarshal(l, &h); err != nil {
			t.Fatal(err)
		}
		i := h.Offset
		if _, bad := wantDead[i]; bad {
			t.Errorf("offset %d handled, want it dead-lettered", i)
		}
		if h.Value != string(recs[i].Value) || h.Key != string(recs[i].Key) || h.EventSource != "aws:kafka" {
			t.Errorf("offset %d: the Go function got key %q value %q source %q", i, h.Key, h.Value, h.EventSource)
		}
		if !bytes.Equal(h.Headers["h"], recs[i].Headers[0].Value) {
			t.Errorf("offset %d: header %v, want %v", i, h.Headers["h"], recs[i].Headers[0].Value)
		}
		handled[i] = true
	}
	for i := range int64(n) {
		if _, bad := wantDead[i]; !bad && !handled[i] {
			t.Errorf("offset %d neither handled nor dead-lettered", i)
		}
	}
	t.Logf("invocations %d, throttled %d, function errors %d", proxy.Invoked.Load(), proxy.Throttled.Load(), proxy.FunctionErrors.Load())
	if proxy.FunctionErrors.Load() == 0 {
		t.Error("no function error")
	}
}
