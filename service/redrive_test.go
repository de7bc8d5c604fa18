package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/msk-consumer/msk-consumer/internal/dlq"
	"github.com/msk-consumer/msk-consumer/internal/ops"
)

func TestRedriveCommand(t *testing.T) {
	c := startOpsCluster(t)
	at := time.Now().Add(-3 * time.Hour)
	c.deadLetter(t, "a", 0, dlq.KindDecode, "orders-svc", at)
	c.deadLetter(t, "b", 1, dlq.KindHandler, "orders-svc", at.Add(2*time.Hour))
	c.deadLetter(t, "c", 2, dlq.KindHandler, "someone-else", at)

	// A dry run lists the group's records and changes nothing.
	code, out, errOut := c.run("redrive", "--dry-run")
	if code != exitOK {
		t.Fatalf("dry run: got exit %d, want 0:\n%s%s", code, out, errOut)
	}
	if strings.Count(out, "would send orders.dlq/") != 2 || !strings.Contains(out, "redrive orders.dlq: would send 2, 0 skipped by the loop guard, 0 not redrivable, 1 not matching the filters, of 3 read (dry run: nothing sent or committed)") {
		t.Errorf("dry run: got\n%s", out)
	}
	if n := countRecords(t, c, "orders"); n != 0 {
		t.Fatalf("dry run: got %d records in orders, want none", n)
	}

	// The same as one JSON document.
	code, out, errOut = c.run("redrive", "--dry-run", "--output", "json")
	var doc struct {
		From        string   `json:"from"`
		DryRun      bool     `json:"dry_run"`
		Read        int64    `json:"read"`
		Sent        int64    `json:"sent"`
		NotMatching int64    `json:"not_matching"`
		Report      []string `json:"report"`
		Error       string   `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &doc); code != exitOK || err != nil {
		t.Fatalf("dry run --output json: got exit %d, %v:\n%s%s", code, err, out, errOut)
	}
	if doc.From != "orders.dlq" || !doc.DryRun || doc.Read != 3 || doc.Sent != 2 || doc.NotMatching != 1 || len(doc.Report) != 2 ||
		!strings.HasPrefix(doc.Report[0], "would send ") || doc.Error != "" {
		t.Errorf("dry run --output json: got %+v", doc)
	}

	// Only handler records that failed within the last hour and a half.
	code, out, errOut = c.run("redrive", "--kind", "handler", "--since", "90m")
	if code != exitOK || !strings.Contains(out, "1 sent") || !strings.Contains(out, "progress in group orders-svc.redrive") {
		t.Fatalf("got exit %d and\n%s%s\nwant 1 sent", code, out, errOut)
	}
	rs := readRecords(t, c, "orders", 1)
	if string(rs[0].Key) != "b" || rs[0].Partition != 1 {
		t.Errorf("got %s in partition %d, want b in its original partition 1", rs[0].Key, rs[0].Partition)
	}
	var hs []string
	for _, h := range rs[0].Headers {
		hs = append(hs, h.Key+"="+string(h.Value))
	}
	if got, want := strings.Join(hs, " "), "trace-id=t-b dlq.redrive.count=1"; got != want {
		t.Errorf("got headers %s, want %s", got, want)
	}
	// The progress passed over a; --from-start reads it again.
	code, out, _ = c.run("redrive")
	if code != exitOK || !strings.Contains(out, "0 sent") {
		t.Errorf("got exit %d and %s, want nothing left after the progress", code, out)
	}
	code, out, _ = c.run("redrive", "--from-start", "--kind", "decode")
	if code != exitOK || !strings.Contains(out, "1 sent") {
		t.Errorf("got exit %d and %s, want a sent again with --from-start", code, out)
	}
	if !strings.Contains(c.env["LOG_LEVEL"], "warn") {
		t.Fatal("the test expects quiet logs")
	}
}

func TestRedriveCommandFailsOnMissingDestination(t *testing.T) {
	c := startOpsCluster(t)
	c.deadLetter(t, "a", 0, dlq.KindDecode, "orders-svc", time.Now())
	code, out, _ := c.run("redrive", "--to", "nowhere")
	if code != exitRuntime || !strings.Contains(out, "redrive orders.dlq failed: destination topic nowhere does not exist") {
		t.Errorf("got exit %d and %s, want 1 naming the destination", code, out)
	}
}

func countRecords(t *testing.T, c *opsCluster, topic string) int64 {
	t.Helper()
	ends, err := c.adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, ps := range ends {
		for _, o := range ps {
			n += o.Offset
		}
	}
	return n
}

func readRecords(t *testing.T, c *opsCluster, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kf.ListenAddrs()...), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for len(rs) < n && ctx.Err() == nil {
		rs = append(rs, cl.PollFetches(ctx).Records()...)
	}
	if len(rs) != n {
		t.Fatalf("got %d records of %s, want %d", len(rs), topic, n)
	}
	return rs
}

// TestProgress checks the bar drawn on a terminal (done, total, rate, ETA)
// and the log lines otherwise.
func TestProgress(t *testing.T) {
	now := time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	var bar bytes.Buffer
	p := &progress{w: &bar, tty: true, log: zap.NewNop(), now: clock}
	p.start(1000)
	now = now.Add(10 * time.Second)
	p.update(250, 1000)
	p.clear()
	p.finish()
	if want := "] 250/1000  25% 25 rec/s ETA 30s"; !strings.Contains(bar.String(), want) {
		t.Errorf("got bar %q, want %q in it", bar.String(), want)
	}

	core, logs := observer.New(zapcore.InfoLevel)
	p = &progress{w: io.Discard, log: zap.New(core), now: clock}
	p.start(100)
	for i := range int64(10) {
		now = now.Add(time.Second)
		p.update((i+1)*10, 100)
	}
	// One line at 5s, one at 10s (also the last).
	if n := logs.FilterMessageSnippet("redrive: ").Len(); n != 2 {
		t.Errorf("got %d progress log lines, want 2", n)
	}
}

// TestRedriveEndToEnd runs the service with an HTTP downstream that
// rejects every record, so that they are dead-lettered; fixes the
// downstream; runs `consumer redrive` while the service runs; and checks
// that the downstream then gets every record once, with its original
// partition, key, value and headers (plus dlq.redrive.count).
func TestRedriveEndToEnd(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	type delivered struct {
		Partition int32             `json:"partition"`
		Key       string            `json:"key"`
		Value     json.RawMessage   `json:"value"`
		Headers   map[string]string `json:"headers"`
	}
	var mu sync.Mutex
	var got []delivered
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var b struct {
			Records []delivered `json:"records"`
		}
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, b.Records...)
		mu.Unlock()
	}))
	defer srv.Close()
	c := startOpsCluster(t, "HANDLER", "http", "HTTP_HANDLER_URL", srv.URL, "METRICS_ADDR", "127.0.0.1:0",
		"BATCH_MAX_WAIT", "100ms", "KAFKA_COMMIT_INTERVAL", "200ms")
	var want []string
	var rs []*kgo.Record
	for i := range 6 {
		r := &kgo.Record{Topic: "orders", Partition: int32(i % 3), Key: []byte(fmt.Sprintf("k-%d", i)),
			Value: []byte(fmt.Sprintf(`{"id":%d}`, i)), Headers: []kgo.RecordHeader{{Key: "trace-id", Value: []byte(fmt.Sprintf("t-%d", i))}}}
		rs = append(rs, r)
		want = append(want, fmt.Sprintf("%d %s %s trace-id=t-%d dlq.redrive.count=1", i%3, r.Key, r.Value, i))
	}
	c.produce(t, rs...)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, Env{Args: []string{"run"}, Lookup: c.lookup, Stdout: &logs, Stderr: &logs}, testHandlers)
	}()
	waitUntil(t, 20*time.Second, "6 records dead-lettered", func() bool { return countRecords(t, c, "orders.dlq") == 6 })
	broken.Store(false)

	code, out, errOut := c.run("redrive")
	if code != exitOK || !strings.Contains(out, "6 sent") {
		t.Fatalf("redrive: got exit %d and\n%s%s", code, out, errOut)
	}
	waitUntil(t, 20*time.Second, "6 records delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 6
	})
	time.Sleep(300 * time.Millisecond) // a duplicate would show now
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("service: got exit %d, want 0", code)
	}
	mu.Lock()
	defer mu.Unlock()
	var lines []string
	for _, d := range got {
		lines = append(lines, fmt.Sprintf("%d %s %s trace-id=%s dlq.redrive.count=%s", d.Partition, d.Key, d.Value, d.Headers["trace-id"], d.Headers["dlq.redrive.count"]))
		if len(d.Headers) != 2 {
			t.Errorf("%s: got headers %v, want trace-id and dlq.redrive.count only", d.Key, d.Headers)
		}
	}
	slices.Sort(lines)
	slices.Sort(want)
	if !slices.Equal(lines, want) {
		t.Errorf("got delivered\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not done in %s: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedriveCommandRefusedWhileOneRuns: `consumer redrive` while another
// redrive of the same group is between two rounds exits 1, naming it,
// in text and in JSON; the dry run still runs and says so.
func TestRedriveCommandRefusedWhileOneRuns(t *testing.T) {
	c := startOpsCluster(t)
	at := time.Now().Add(-time.Hour)
	for _, k := range []string{"a", "b", "c"} {
		c.deadLetter(t, k, 0, dlq.KindHandler, "orders-svc", at)
	}
	running, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		var once bool
		o := ops.Redrive{From: "orders.dlq", Group: "orders-svc", MaxRedrives: 3, ProgressGroup: "orders-svc.redrive", Batch: 1}
		_, err := o.Run(context.Background(), ops.RedriveDeps{Opts: []kgo.Opt{kgo.SeedBrokers(c.kf.ListenAddrs()...), kgo.ClientID("other-redrive")},
			Progress: func(int64, int64) {
				if !once {
					once = true
					close(running)
					<-release
				}
			}})
		done <- err
	}()
	<-running
	code, out, errOut := c.run("redrive")
	if code != exitRuntime || !strings.Contains(out, "redrive orders.dlq refused: another redrive of orders.dlq is running") || !strings.Contains(out, "other-redrive") {
		t.Errorf("got exit %d and\n%s%s\nwant 1 naming the running redrive", code, out, errOut)
	}
	code, out, _ = c.run("redrive", "--output", "json")
	var doc struct {
		Sent    int64 `json:"sent"`
		Running []struct {
			ClientID string `json:"client_id"`
		} `json:"running"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &doc); code != exitRuntime || err != nil || doc.Sent != 0 || len(doc.Running) != 1 ||
		doc.Running[0].ClientID != "other-redrive" || !strings.Contains(doc.Error, "another redrive") {
		t.Errorf("--output json: got exit %d, %v and\n%s", code, err, out)
	}
	code, out, _ = c.run("redrive", "--dry-run")
	if code != exitOK || !strings.Contains(out, "a real run would be refused now: another redrive") {
		t.Errorf("dry run: got exit %d and\n%s", code, out)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := countRecords(t, c, "orders"); n != 3 {
		t.Errorf("got %d records in orders, want 3: each sent once", n)
	}
}
