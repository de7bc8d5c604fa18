package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestOffsetsCommands(t *testing.T) {
	c := startOpsCluster(t)
	t0 := time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC)
	var rs []*kgo.Record
	for p := range int32(3) {
		for i := range 5 {
			rs = append(rs, &kgo.Record{Topic: "orders", Partition: p, Value: []byte("v"), Timestamp: t0.Add(time.Duration(i) * time.Minute)})
		}
	}
	c.produce(t, rs...)
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 2, LeaderEpoch: -1})
	os.Add(kadm.Offset{Topic: "orders", Partition: 1, At: 5, LeaderEpoch: -1})
	if _, err := c.adm.CommitOffsets(context.Background(), "orders-svc", os); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := c.run("offsets")
	if code != exitOK {
		t.Fatalf("got exit %d:\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"group orders-svc: 0 active members",
		"orders  0          2          5    3    2026-11-22T11:02:00.000Z  -",
		"orders  1          5          5    0    -                         -",
		"orders  2          -          5    5    2026-11-22T11:00:00.000Z  -",
		"total lag: 8 records",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("got\n%s\nwant a line with %q", out, want)
		}
	}

	// The plan of a reset to a time; without --yes off a terminal, nothing is applied.
	code, out, errOut = c.run("offsets", "reset", "--to", "2026-11-22T11:03:00Z")
	if code != exitRuntime || !strings.Contains(errOut, "not applied: pass --yes") {
		t.Errorf("got exit %d and %s, want 1 asking for --yes", code, errOut)
	}
	for _, want := range []string{
		"orders/0: 2 → 3 (skips 1 record)",
		"orders/1: 5 → 3 (replays 2 records)",
		"orders/2: none → 3 (skips 3 records)",
		"in all: 2 records replayed, 4 skipped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("got plan\n%s\nwant a line with %q", out, want)
		}
	}
	code, out, _ = c.run("offsets", "reset", "--to", "earliest", "--partition", "1", "--dry-run")
	if code != exitOK || !strings.Contains(out, "orders/1: 5 → 0 (replays 5 records)") || !strings.Contains(out, "dry run: nothing changed") {
		t.Errorf("dry run: got exit %d and\n%s", code, out)
	}
	assertOffsets(t, c, map[int32]int64{0: 2, 1: 5})

	// --output json: one document with the documented fields.
	code, out, errOut = c.run("offsets", "--output", "json")
	var list struct {
		Group      string            `json:"group"`
		Members    []json.RawMessage `json:"members"`
		TotalLag   int64             `json:"total_lag"`
		Partitions []struct {
			Topic        string  `json:"topic"`
			Partition    int32   `json:"partition"`
			Committed    *int64  `json:"committed"`
			Start        int64   `json:"start"`
			End          int64   `json:"end"`
			Lag          int64   `json:"lag"`
			NextRecordAt *string `json:"next_record_at"`
			Member       *string `json:"member"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(out), &list); code != exitOK || err != nil {
		t.Fatalf("--output json: got exit %d, %v:\n%s%s", code, err, out, errOut)
	}
	if list.Group != "orders-svc" || list.Members == nil || len(list.Members) != 0 || list.TotalLag != 8 || len(list.Partitions) != 3 {
		t.Errorf("--output json: got %+v", list)
	}
	if p := list.Partitions[2]; p.Committed != nil || p.End != 5 || p.Lag != 5 || p.NextRecordAt == nil || *p.NextRecordAt != "2026-11-22T11:00:00.000Z" || p.Member != nil {
		t.Errorf("--output json, partition 2: got %+v", p)
	}
	if p := list.Partitions[1]; p.Committed == nil || *p.Committed != 5 || p.NextRecordAt != nil {
		t.Errorf("--output json, partition 1: got %+v", p)
	}
	code, out, _ = c.run("offsets", "reset", "--to", "earliest", "--partition", "0", "--dry-run", "--output", "json")
	var plan struct {
		Moves []struct {
			Old   *int64 `json:"old"`
			New   int64  `json:"new"`
			Delta int64  `json:"delta"`
		} `json:"moves"`
		Replayed int64 `json:"replayed"`
		DryRun   bool  `json:"dry_run"`
		Applied  bool  `json:"applied"`
	}
	if err := json.Unmarshal([]byte(out), &plan); code != exitOK || err != nil || len(plan.Moves) != 1 || *plan.Moves[0].Old != 2 ||
		plan.Moves[0].New != 0 || plan.Moves[0].Delta != 2 || plan.Replayed != 2 || !plan.DryRun || plan.Applied {
		t.Errorf("reset --dry-run --output json: got exit %d, %v and\n%s", code, err, out)
	}
	if code, _, errOut := c.run("offsets", "--output", "yaml"); code != exitConfig || !strings.Contains(errOut, "expected text or json") {
		t.Errorf("--output yaml: got exit %d and %s, want 2", code, errOut)
	}

	code, out, errOut = c.run("offsets", "reset", "--to", "2026-11-22T11:03:00Z", "--yes")
	if code != exitOK || !strings.Contains(out, "applied") {
		t.Fatalf("got exit %d and\n%s%s", code, out, errOut)
	}
	assertOffsets(t, c, map[int32]int64{0: 3, 1: 3, 2: 3})

	// With a member in the group, refused, naming it.
	m, err := kgo.NewClient(kgo.SeedBrokers(c.kf.ListenAddrs()...), kgo.ConsumerGroup("orders-svc"), kgo.ConsumeTopics("orders"),
		kgo.ClientID("pod-7"), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.kf.WaitGroupStable(ctx, "orders-svc", 1); err != nil {
		for ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
			m.PollFetches(pctx)
			pcancel()
			if _, err := c.kf.WaitGroupStable(pctx, "orders-svc", 1); err == nil {
				break
			}
		}
	}
	code, _, errOut = c.run("offsets", "reset", "--to", "latest", "--yes")
	if code != exitRuntime || !strings.Contains(errOut, "refused: group orders-svc has 1 active member;") || !strings.Contains(errOut, "pod-7") {
		t.Errorf("got exit %d and %s, want 1 naming the member", code, errOut)
	}
	// A dry run prints the plan and exits 0, saying a real run would be
	// refused; --to takes a duration ago as redrive --since does.
	code, out, errOut = c.run("offsets", "reset", "--to", "2h", "--dry-run")
	if code != exitOK || !strings.Contains(out, "dry run: nothing changed; a real run would be refused: group orders-svc has 1 active member;") ||
		!strings.Contains(out, "pod-7") || !strings.Contains(out, "reset group orders-svc to 2h ago (") {
		t.Errorf("dry run with a member: got exit %d and\n%s%s\nwant 0, the plan and the refusal a real run would meet", code, out, errOut)
	}
	assertOffsets(t, c, map[int32]int64{0: 3, 1: 3, 2: 3})
}

func assertOffsets(t *testing.T, c *opsCluster, want map[int32]int64) {
	t.Helper()
	offs, err := c.adm.FetchOffsetsForTopics(context.Background(), "orders-svc", "orders")
	if err != nil {
		t.Fatal(err)
	}
	for p, w := range want {
		if o, ok := offs.Lookup("orders", p); !ok || o.At != w {
			t.Errorf("partition %d: got committed %d, want %d", p, o.At, w)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the service's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStartOffsetTime runs the service with KAFKA_START_OFFSET set to a
// time: a new group starts at the first record at or after it in each
// partition.
func TestStartOffsetTime(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC)
	c := startOpsCluster(t, "KAFKA_START_OFFSET", t0.Add(150*time.Second).Format(time.RFC3339),
		"HANDLER", "log", "VALUE_FORMAT", "string", "LOG_LEVEL", "info", "METRICS_ADDR", "127.0.0.1:0")
	var rs []*kgo.Record
	for p := range int32(3) {
		for i := range 5 {
			rs = append(rs, &kgo.Record{Topic: "orders", Partition: p, Value: []byte("v"), Timestamp: t0.Add(time.Duration(i) * time.Minute)})
		}
	}
	c.produce(t, rs...)
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, Env{Args: []string{"run"}, Lookup: c.lookup, Stdout: &logs, Stderr: &logs}, testHandlers)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(logs.String(), `"msg":"record"`) < 6 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // anything more would show now
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("got exit %d, want 0", code)
	}
	var offsets []string
	for line := range strings.SplitSeq(logs.String(), "\n") {
		if !strings.Contains(line, `"msg":"record"`) {
			continue
		}
		var r struct {
			Partition int32 `json:"partition"`
			Offset    int64 `json:"offset"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		offsets = append(offsets, fmt.Sprintf("%d@%d", r.Partition, r.Offset))
	}
	slices.Sort(offsets)
	if want := []string{"0@3", "0@4", "1@3", "1@4", "2@3", "2@4"}; !slices.Equal(offsets, want) {
		t.Errorf("got records %v, want %v (from the first record at or after 11:02:30)", offsets, want)
	}
}
