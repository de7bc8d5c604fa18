package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/internal/kafkaclient/kafkaclienttest"
)

// TestBinaryRedrive: the service dead-letters records while its HTTP
// downstream rejects them; the downstream is fixed; `consumer redrive`
// sends them back; the service, started again, handles each exactly as a
// first delivery would be handled: the same key, value and headers, no
// dlq.* context but the redrive count, and every record handled once.
func TestBinaryRedrive(t *testing.T) {
	bin := binary(t)
	cluster := kafkaclienttest.StartCluster(t, nil, "products", "products.dlq")

	// The downstream fails every tenth product until it is fixed.
	var fixed atomic.Bool
	var mu sync.Mutex
	handled := map[string][]recordSeen{} // key -> successful deliveries
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Records []struct {
				Offset  int64             `json:"offset"`
				Key     json.RawMessage   `json:"key"`
				Value   json.RawMessage   `json:"value"`
				Headers map[string]string `json:"headers"`
			} `json:"records"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("request body: %v", err)
		}
		var failures []string
		mu.Lock()
		defer mu.Unlock()
		for _, rec := range body.Records {
			var key string
			_ = json.Unmarshal(rec.Key, &key)
			if !fixed.Load() && strings.HasSuffix(key, "0") {
				failures = append(failures, fmt.Sprintf(`{"itemIdentifier":"%d"}`, rec.Offset))
				continue
			}
			handled[key] = append(handled[key], recordSeen{value: string(rec.Value), headers: rec.Headers})
		}
		fmt.Fprintf(w, `{"batchItemFailures":[%s]}`, strings.Join(failures, ","))
	}))
	defer srv.Close()

	env := []string{
		"KAFKA_BROKERS=" + strings.Join(cluster.ListenAddrs(), ","),
		"KAFKA_TOPICS=products",
		"KAFKA_GROUP_ID=redrive-test",
		"KAFKA_AUTH=none",
		"KAFKA_COMMIT_INTERVAL=200ms",
		"HANDLER=http",
		"HTTP_HANDLER_URL=" + srv.URL,
		"HANDLER_RETRY_BACKOFF=10ms",
		"BATCH_MAX_WAIT=50ms",
		"LOG_LEVEL=warn",
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 100
	for i := range n {
		r := &kgo.Record{Topic: "products", Key: fmt.Appendf(nil, "sku-%d", i),
			Value:   fmt.Appendf(nil, `{"id":%d}`, i),
			Headers: []kgo.RecordHeader{{Key: "trace-id", Value: fmt.Appendf(nil, "t-%d", i)}}}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	countHandled := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(handled)
	}

	// First run: 90 handled, 10 dead-lettered.
	runService(t, bin, env, func() bool { return countHandled() == n-10 && dlqEnd(t, cl) == 10 })

	// The downstream is fixed; redrive.
	fixed.Store(true)
	redrive := exec.Command(bin, "redrive")
	redrive.Env = env
	out, err := redrive.CombinedOutput()
	if err != nil {
		t.Fatalf("consumer redrive: %v\n%s", err, out)
	}

	// Second run: the ten come back once each.
	runService(t, bin, env, func() bool { return countHandled() == n })

	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		key := fmt.Sprintf("sku-%d", i)
		seen := handled[key]
		if len(seen) != 1 {
			t.Errorf("%s: handled %d times, want once", key, len(seen))
			continue
		}
		if want := fmt.Sprintf(`{"id":%d}`, i); seen[0].value != want {
			t.Errorf("%s: value %s, want %s", key, seen[0].value, want)
		}
		if got := seen[0].headers["trace-id"]; got != fmt.Sprintf("t-%d", i) {
			t.Errorf("%s: trace-id %q, want t-%d", key, got, i)
		}
		for h := range seen[0].headers {
			if strings.HasPrefix(h, "dlq.") && h != "dlq.redrive.count" {
				t.Errorf("%s: delivered with %s", key, h)
			}
		}
		if want := strings.HasSuffix(key, "0"); (seen[0].headers["dlq.redrive.count"] == "1") != want {
			t.Errorf("%s: dlq.redrive.count %q (redriven: %v)", key, seen[0].headers["dlq.redrive.count"], want)
		}
	}
}

type recordSeen struct {
	value   string
	headers map[string]string
}

// dlqEnd is the number of records in products.dlq.
func dlqEnd(t *testing.T, cl *kgo.Client) int64 {
	t.Helper()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), "products.dlq")
	if err != nil {
		return -1
	}
	var n int64
	ends.Each(func(e kadm.ListedOffset) { n += e.Offset })
	return n
}

// runService runs the binary until done holds, then stops it with SIGTERM
// and wants exit 0.
func runService(t *testing.T, bin string, env []string, done func() bool) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(env, "METRICS_ADDR="+freeAddr(t))
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("not done within 30s; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("no exit within 30s of SIGTERM")
	}
}
