package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/internal/kafkaclient/kafkaclienttest"
	statuspage "github.com/msk-consumer/msk-consumer/internal/status"
)

// buildBinary builds the consumer once per test run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "consumer-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "consumer")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type post struct {
	auth  string
	ctype string
	body  struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Records   []struct {
			Partition int32             `json:"partition"`
			Offset    int64             `json:"offset"`
			Key       json.RawMessage   `json:"key"`
			Value     json.RawMessage   `json:"value"`
			Headers   map[string]string `json:"headers"`
		} `json:"records"`
	}
}

// TestBinary drives the built binary only through its environment, its HTTP
// handler and its metrics/health endpoints.
func TestBinary(t *testing.T) {
	bin := binary(t)
	cluster := kafkaclienttest.StartCluster(t, nil, "products", "products.dlq")

	// The service behind the HTTP handler: it refuses sku 13 always
	// (partial failure), and answers 503 to the first request. A 503 says
	// the service is unavailable, which does not count against the
	// records' attempts: if sku 13 was in that first batch, it is posted
	// once more than HANDLER_MAX_ATTEMPTS.
	var mu sync.Mutex
	var posts []post
	first := true
	extra13 := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p post
		p.auth, p.ctype = r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		if err := json.NewDecoder(r.Body).Decode(&p.body); err != nil {
			t.Errorf("request body: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		posts = append(posts, p)
		if first {
			first = false
			for _, rec := range p.body.Records {
				if string(rec.Key) == `"sku-13"` {
					extra13 = 1
				}
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var failures []string
		for _, rec := range p.body.Records {
			if string(rec.Key) == `"sku-13"` {
				failures = append(failures, fmt.Sprintf(`{"itemIdentifier":"%d"}`, rec.Offset))
			}
		}
		fmt.Fprintf(w, `{"batchItemFailures":[%s]}`, strings.Join(failures, ","))
	}))
	defer srv.Close()

	metricsAddr := freeAddr(t)
	env := []string{
		"KAFKA_BROKERS=" + strings.Join(cluster.ListenAddrs(), ","),
		"KAFKA_TOPICS=products",
		"KAFKA_GROUP_ID=binary-test",
		"KAFKA_AUTH=none",
		"KAFKA_COMMIT_INTERVAL=200ms",
		"VALUE_FORMAT=json",
		"HANDLER=http",
		"HTTP_HANDLER_URL=" + srv.URL,
		"HTTP_HANDLER_AUTH_HEADER=Bearer s3cr3t-t0ken",
		"HANDLER_RETRY_BACKOFF=10ms",
		"BATCH_MAX_WAIT=100ms",
		"METRICS_ADDR=" + metricsAddr,
	}
	var stderr lockedBuffer
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 300
	var recs []*kgo.Record
	for i := range n {
		v := fmt.Appendf(nil, `{"id":%d,"sku":"sku-%d"}`, i, i)
		if i == 77 {
			v = []byte(`{"id":77,`) // undecodable
		}
		recs = append(recs, &kgo.Record{Topic: "products", Key: fmt.Appendf(nil, "sku-%d", i), Value: v,
			Headers: []kgo.RecordHeader{{Key: "trace-id", Value: fmt.Appendf(nil, "t-%d", i)}}})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// Every decodable record reaches the service; sku-13 three times (four
	// if the 503 answered its batch).
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := map[string]int{}
		for _, p := range posts {
			for _, r := range p.body.Records {
				got[string(r.Key)]++
			}
		}
		want13 := 3 + extra13
		mu.Unlock()
		if len(got) == n-1 && got[`"sku-13"`] == want13 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: got %d distinct keys (sku-13 %d times), want %d (%d); stderr:\n%s", len(got), got[`"sku-13"`], n-1, want13, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	for _, p := range posts {
		if p.auth != "Bearer s3cr3t-t0ken" || p.ctype != "application/json" {
			t.Fatalf("request headers: got Authorization %q Content-Type %q", p.auth, p.ctype)
		}
		for _, r := range p.body.Records {
			if r.Partition != p.body.Partition {
				t.Fatalf("record of partition %d in a batch of partition %d", r.Partition, p.body.Partition)
			}
			id := strings.TrimPrefix(strings.Trim(string(r.Key), `"`), "sku-")
			if want := fmt.Sprintf(`{"id":%s,"sku":"sku-%s"}`, id, id); string(r.Value) != want {
				t.Fatalf("value: got %s, want %s", r.Value, want)
			}
			if r.Headers["trace-id"] != "t-"+id {
				t.Fatalf("headers: got %v", r.Headers)
			}
		}
	}
	mu.Unlock()

	// Both failures are in the dead-letter topic.
	dl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("products.dlq"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	kinds := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(kinds) < 2 && ctx.Err() == nil {
		dl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == "dlq.error.kind" {
					kinds[string(r.Key)] = string(h.Value)
				}
			}
		})
	}
	if kinds["sku-77"] != "decode" || kinds["sku-13"] != "handler" {
		t.Fatalf("dead letters: got %v, want sku-77 decode and sku-13 handler", kinds)
	}

	// Metrics and health, as a scraper and a probe see them.
	body := get(t, "http://"+metricsAddr+"/metrics")
	for _, name := range []string{
		"consumer_records_total", "consumer_decode_errors_total", "consumer_handler_retries_total",
		"consumer_batches_total", "consumer_batch_records", "consumer_batch_duration_seconds",
		"consumer_commits_total", "consumer_lag_records", "consumer_assigned_partitions",
		"consumer_rebalances_total", "consumer_dlq_produce_errors_total", "consumer_buffered_bytes",
		"consumer_lag_seconds", "consumer_dead_letters_total",
		"consumer_kafka_connects_total", "go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if !strings.Contains(body, `consumer_records_total{outcome="processed",topic="products"} 298`) {
		t.Errorf("/metrics: want 298 processed records; got:\n%s", grep(body, "consumer_records_total"))
	}
	if code := status(t, "http://"+metricsAddr+"/readyz"); code != 200 {
		t.Errorf("/readyz: got %d, want 200", code)
	}
	checkStatusJSON(t, metricsAddr, stderr.String)
	st := exec.Command(bin, "status")
	st.Env = []string{"METRICS_ADDR=" + metricsAddr}
	if out, err := st.CombinedOutput(); err != nil || !strings.Contains(string(out), "group binary-test, member ") || !strings.Contains(string(out), "last 2 dead letters:") {
		t.Errorf("consumer status: %v\n%s", err, out)
	}
	hc := exec.Command(bin, "healthcheck")
	hc.Env = []string{"METRICS_ADDR=" + metricsAddr}
	if out, err := hc.CombinedOutput(); err != nil {
		t.Errorf("consumer healthcheck: %v %s", err, out)
	}
	if strings.Contains(stderr.String(), "s3cr3t") {
		t.Error("the auth header's value appears in the logs")
	}

	// SIGTERM: exit 0 with every partition committed to its end.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30s of SIGTERM")
	}
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), "binary-test")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), "products")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		o, _ := offs.Lookup("products", e.Partition)
		if o.At != e.Offset {
			t.Errorf("partition %d: committed %d, want the end %d", e.Partition, o.At, e.Offset)
		}
	})
	if hc := exec.Command(bin, "healthcheck"); true {
		hc.Env = []string{"METRICS_ADDR=" + metricsAddr}
		if err := hc.Run(); err == nil {
			t.Error("healthcheck succeeded with the service stopped")
		}
	}
}

func TestBinaryInvalidConfig(t *testing.T) {
	bin := binary(t)
	cmd := exec.Command(bin)
	cmd.Env = []string{"KAFKA_TOPICS=a", "BATCH_MAX_RECORDS=lots", "KAFKA_AUTH=kerberos", "KAFKA_SASL_PASSWORD=hunter2"}
	out, err := cmd.CombinedOutput()
	if code := exitCode(err); code != 2 {
		t.Fatalf("exit code: got %d, want 2; output:\n%s", code, out)
	}
	for _, v := range []string{"KAFKA_BROKERS", "KAFKA_GROUP_ID", "BATCH_MAX_RECORDS", "KAFKA_AUTH"} {
		if !strings.Contains(string(out), v) {
			t.Errorf("output does not name %s:\n%s", v, out)
		}
	}
	if strings.Contains(string(out), "hunter2") {
		t.Errorf("output shows the password:\n%s", out)
	}
}

func TestBinaryConfigAndVersion(t *testing.T) {
	bin := binary(t)
	cmd := exec.Command(bin, "config")
	cmd.Env = []string{"KAFKA_BROKERS=b:9092", "KAFKA_TOPICS=orders", "KAFKA_GROUP_ID=g", "AWS_REGION=eu-west-1",
		"HTTP_HANDLER_AUTH_HEADER=Bearer topsecret", "HANDLER=http", "HTTP_HANDLER_URL=https://example.test/hook"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("consumer config: %v", err)
	}
	for _, want := range []string{"KAFKA_BROKERS=b:9092", "KAFKA_AUTH=iam", "BATCH_MAX_RECORDS=500", "DLQ_TOPIC=orders.dlq"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("consumer config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "topsecret") {
		t.Errorf("consumer config shows a secret:\n%s", out)
	}
	out, err = exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "consumer ") {
		t.Fatalf("consumer version: %v %q", err, out)
	}
}

// lockedBuffer is a bytes.Buffer safe to read while the child writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func grep(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// checkStatusJSON checks /status.json field by field once every record is
// finished: the group, each partition's offsets and lag, idle lanes, no
// stall, the two dead letters (and nothing of their keys or values), and
// that neither page shows the handler's credentials.
func checkStatusJSON(t *testing.T, metricsAddr string, logs func() string) {
	t.Helper()
	var v statuspage.View
	deadline := time.Now().Add(20 * time.Second)
	for {
		body := get(t, "http://"+metricsAddr+"/status.json")
		v = statuspage.View{}
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("/status.json: %v: %s", err, body)
		}
		settled := len(v.DeadLetters) == 2 && len(v.Partitions) > 0
		for _, p := range v.Partitions {
			settled = settled && p.LagRecords == 0 && p.Committed == p.End
		}
		if settled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status.json never settled (every partition committed to its end, 2 dead letters): %s\nstderr:\n%s", body, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v.Version == "" || v.Commit == "" || v.UptimeSeconds <= 0 || !v.Ready || len(v.Stalls) != 0 {
		t.Errorf("/status.json: version %q commit %q uptime %v ready %v stalls %v", v.Version, v.Commit, v.UptimeSeconds, v.Ready, v.Stalls)
	}
	if g := v.Group; g.Type != "consumer" || g.ID != "binary-test" || g.Member == "" || g.Generation < 1 || g.Protocol != "classic" {
		t.Errorf("/status.json group: got %+v", g)
	}
	var end int64
	for _, p := range v.Partitions {
		end += p.End
		if p.Topic != "products" || p.Next != p.End || p.LagSeconds == nil || *p.LagSeconds != 0 || p.Paused || len(p.Lanes) != 1 || p.Lanes[0].Batch != nil || p.Lanes[0].Stall != "" {
			t.Errorf("/status.json partition: got %+v", p)
		}
	}
	if end != 300 {
		t.Errorf("/status.json: end offsets sum to %d, want 300", end)
	}
	kinds := map[string]bool{}
	for _, d := range v.DeadLetters {
		kinds[d.Kind] = true
		if d.Topic != "products" || d.Offset < 0 || d.Message == "" || d.Time.IsZero() {
			t.Errorf("/status.json dead letter: got %+v", d)
		}
	}
	if !kinds["decode"] || !kinds["handler"] {
		t.Errorf("/status.json dead letters: got kinds %v, want decode and handler", kinds)
	}
	for _, page := range []string{"/status", "/status.json"} {
		body := get(t, "http://"+metricsAddr+page)
		for _, secret := range []string{"s3cr3t", "sku-77", "sku-13", `{"id":77,`} {
			if strings.Contains(body, secret) {
				t.Errorf("%s shows %q (a credential, a key or a value)", page, secret)
			}
		}
	}
}
