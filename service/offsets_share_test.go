package service

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestShareOffsetsCommands: with KAFKA_GROUP_TYPE=share, `consumer offsets`
// lists the share group's start offsets and `offsets reset --yes` moves
// them.
func TestShareOffsetsCommands(t *testing.T) {
	c := startOpsCluster(t, "KAFKA_GROUP_TYPE", "share")
	t0 := time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC)
	var rs []*kgo.Record
	for p := range int32(3) {
		for i := range 5 {
			rs = append(rs, &kgo.Record{Topic: "orders", Partition: p, Value: []byte("v"), Timestamp: t0.Add(time.Duration(i) * time.Minute)})
		}
	}
	c.produce(t, rs...)

	code, out, errOut := c.run("offsets", "reset", "--to", "2", "--partition", "1", "--yes")
	if code != exitOK {
		t.Fatalf("got exit %d:\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"reset share group orders-svc to 2:",
		"orders/1: none → 2 (skips 2 records)",
		"applied: share group orders-svc starts at the new offsets",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("got\n%s\nwant a line with %q", out, want)
		}
	}

	code, out, errOut = c.run("offsets")
	if code != exitOK {
		t.Fatalf("got exit %d:\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"share group orders-svc: 0 active members",
		"START OFFSET",
		"orders  0          -             5    5    2026-11-22T11:00:00.000Z  -",
		"orders  1          2             5    3    2026-11-22T11:02:00.000Z  -",
		"total lag: 13 records",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("got\n%s\nwant a line with %q", out, want)
		}
	}
	code, out, _ = c.run("offsets", "--output", "json")
	if code != exitOK || !strings.Contains(out, `"group_type": "share"`) {
		t.Errorf("got exit %d and\n%s\nwant group_type share", code, out)
	}
}
