package ops

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

// seedTimed writes n records to each of topic's parts partitions, record i
// with the timestamp t0 + i seconds.
func seedTimed(t *testing.T, c *cluster, topic string, parts int32, n int) {
	t.Helper()
	var rs []*kgo.Record
	for p := range parts {
		for i := range n {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: []byte("v"), Timestamp: t0.Add(time.Duration(i) * time.Second)})
		}
	}
	c.produce(t, rs...)
}

func commitAt(t *testing.T, c *cluster, group, topic string, at map[int32]int64) {
	t.Helper()
	os := kadm.Offsets{}
	for p, o := range at {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: o, LeaderEpoch: -1})
	}
	resp, err := c.adm.CommitOffsets(context.Background(), group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestOffsetsList(t *testing.T) {
	c := startCluster(t)
	topic := c.topic(t, "-src", 3, nil)
	group := c.group(t, "-g")
	seedTimed(t, c, topic, 3, 10)
	commitAt(t, c, group, topic, map[int32]int64{0: 4, 1: 10}) // 2: nothing committed
	pos, members, err := Offsets(context.Background(), c.opts(), group, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 0 {
		t.Errorf("got members %v, want none", members)
	}
	want := []PartitionOffsets{
		{Topic: topic, Partition: 0, Committed: 4, End: 10, Lag: 6, Next: t0.Add(4 * time.Second)},
		{Topic: topic, Partition: 1, Committed: 10, End: 10, Lag: 0},
		{Topic: topic, Partition: 2, Committed: -1, End: 10, Lag: 10, Next: t0},
	}
	if len(pos) != len(want) {
		t.Fatalf("got %d partitions, want %d", len(pos), len(want))
	}
	for i, w := range want {
		g := pos[i]
		if g.Partition != w.Partition || g.Committed != w.Committed || g.End != w.End || g.Lag != w.Lag || !g.Next.Equal(w.Next) || g.Member != "" {
			t.Errorf("partition %d: got %+v, want %+v", w.Partition, g, w)
		}
	}
}

// joinMember joins group as a member consuming topic and returns it once
// it owns the partitions.
func joinMember(t *testing.T, c *cluster, group, topic string) *kgo.Client {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(c.addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ClientID("member-under-test"), kgo.DisableAutoCommit()}
	if os.Getenv("KAFKA_TEST_GROUP_PROTOCOL") == "consumer" {
		opts = append(opts, kgo.ServerSideBalancer()) // KIP-848, as make test-kafka-848 runs it
	}
	m, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		m.PollFetches(pctx)
		pcancel()
		if _, owners, err := Group(ctx, c.adm, group); err == nil && len(owners[topic]) > 0 {
			return m
		}
		if ctx.Err() != nil {
			t.Fatal("the member did not join in 30s")
		}
	}
}

func TestOffsetsMember(t *testing.T) {
	c := startCluster(t)
	topic := c.topic(t, "-src", 2, nil)
	group := c.group(t, "-g")
	seedTimed(t, c, topic, 2, 3)
	joinMember(t, c, group, topic)
	pos, members, err := Offsets(context.Background(), c.opts(), group, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0].ClientID != "member-under-test" {
		t.Fatalf("got members %v, want the one member", members)
	}
	for _, p := range pos {
		if !strings.HasPrefix(p.Member, "member-under-test@") {
			t.Errorf("partition %d: got owner %q, want member-under-test@<host>", p.Partition, p.Member)
		}
	}
}

// TestGroupThatNeverExisted: a group nobody joined or committed for has no
// members and owns nothing, whichever protocol the brokers speak.
func TestGroupThatNeverExisted(t *testing.T) {
	c := startCluster(t)
	members, owners, err := Group(context.Background(), c.adm, c.group(t, "-never"))
	if err != nil || len(members) != 0 || len(owners) != 0 {
		t.Fatalf("got members %v, owners %v, error %v; want none and no error", members, owners, err)
	}
}

// TestGroupOnBrokersBeforeKIP848: brokers that do not serve
// ConsumerGroupDescribe (before Kafka 3.7, as many MSK clusters run) still
// describe a classic group, and a group that never existed has no members.
func TestGroupOnBrokersBeforeKIP848(t *testing.T) {
	kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.MaxVersions(kversion.V3_6_0()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kf.Close)
	c := startClusterAt(t, kf)
	topic := c.topic(t, "-src", 2, nil)
	group := c.group(t, "-g")
	members, _, err := Group(context.Background(), c.adm, c.group(t, "-never"))
	if err != nil || len(members) != 0 {
		t.Fatalf("a group that never existed: got members %v, error %v; want none", members, err)
	}
	joinMember(t, c, group, topic) // waits until Group sees it own partitions
}

func TestResetRefusedWithMembersAppliedWithout(t *testing.T) {
	c := startCluster(t)
	topic := c.topic(t, "-src", 2, nil)
	group := c.group(t, "-g")
	seedTimed(t, c, topic, 2, 10)
	commitAt(t, c, group, topic, map[int32]int64{0: 8, 1: 8})
	m := joinMember(t, c, group, topic)
	ctx := context.Background()
	plan, err := Plan(ctx, c.adm, group, []string{topic}, -1, Target{Earliest: true, text: "earliest"})
	if err != nil {
		t.Fatal(err)
	}
	for _, mv := range plan {
		if mv.Old != 8 || mv.New != 0 || mv.Delta() != 8 {
			t.Errorf("got %+v, want 8 → 0, replaying 8", mv)
		}
	}
	err = Apply(ctx, c.adm, group, plan)
	var active *ErrActiveMembers
	if !errors.As(err, &active) || !strings.Contains(err.Error(), "member-under-test") {
		t.Fatalf("got %v, want the reset refused naming the member", err)
	}
	assertCommitted(t, c, group, topic, map[int32]int64{0: 8, 1: 8})

	m.Close() // leaves the group
	if err := Apply(ctx, c.adm, group, plan); err != nil {
		t.Fatal(err)
	}
	assertCommitted(t, c, group, topic, map[int32]int64{0: 0, 1: 0})
}

func assertCommitted(t *testing.T, c *cluster, group, topic string, want map[int32]int64) {
	t.Helper()
	offs, err := c.adm.FetchOffsetsForTopics(context.Background(), group, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p, w := range want {
		o, ok := offs.Lookup(topic, p)
		if !ok || o.At != w {
			t.Errorf("partition %d: got committed %d (%v), want %d", p, o.At, ok, w)
		}
	}
}

func TestResetTargets(t *testing.T) {
	c := startCluster(t)
	topic := c.topic(t, "-src", 2, nil)
	group := c.group(t, "-g")
	seedTimed(t, c, topic, 2, 10)
	commitAt(t, c, group, topic, map[int32]int64{0: 3, 1: 7})
	ctx := context.Background()
	for _, tc := range []struct {
		to        string
		partition int32
		want      map[int32]int64
		delta     map[int32]int64
	}{
		{to: "earliest", partition: -1, want: map[int32]int64{0: 0, 1: 0}, delta: map[int32]int64{0: 3, 1: 7}},
		{to: "latest", partition: -1, want: map[int32]int64{0: 10, 1: 10}, delta: map[int32]int64{0: -7, 1: -3}},
		{to: t0.Add(5 * time.Second).Format(time.RFC3339), partition: -1, want: map[int32]int64{0: 5, 1: 5}, delta: map[int32]int64{0: -2, 1: 2}},
		{to: t0.Add(4500 * time.Millisecond).Format(time.RFC3339Nano), partition: 1, want: map[int32]int64{1: 5}, delta: map[int32]int64{1: 2}},
		{to: t0.Add(time.Hour).Format(time.RFC3339), partition: -1, want: map[int32]int64{0: 10, 1: 10}},
		{to: "6", partition: 0, want: map[int32]int64{0: 6}, delta: map[int32]int64{0: -3}},
		// A duration ago, as redrive --since takes it (now is t0+10s).
		{to: "5s", partition: -1, want: map[int32]int64{0: 5, 1: 5}, delta: map[int32]int64{0: -2, 1: 2}},
		{to: "5500ms", partition: 1, want: map[int32]int64{1: 5}, delta: map[int32]int64{1: 2}},
	} {
		t.Run(tc.to, func(t *testing.T) {
			target, err := ParseTargetAt(tc.to, t0.Add(10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			plan, err := Plan(ctx, c.adm, group, []string{topic}, tc.partition, target)
			if err != nil {
				t.Fatal(err)
			}
			if len(plan) != len(tc.want) {
				t.Fatalf("got %d moves, want %d", len(plan), len(tc.want))
			}
			for _, m := range plan {
				if m.New != tc.want[m.Partition] {
					t.Errorf("partition %d: got %d, want %d", m.Partition, m.New, tc.want[m.Partition])
				}
				if d, ok := tc.delta[m.Partition]; ok && m.Delta() != d {
					t.Errorf("partition %d: got delta %d, want %d", m.Partition, m.Delta(), d)
				}
			}
		})
	}
	if _, err := Plan(ctx, c.adm, group, []string{topic}, 0, Target{Offset: 11, text: "11"}); err == nil {
		t.Error("got a plan to offset 11 of a partition ending at 10, want it refused")
	}
	for _, bad := range []string{"yesterday", "-1", "2026-11-22", "-2h"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("--to %s: got nil, want an error", bad)
		}
	}
	// Applying a plan to a time lands there.
	target, _ := ParseTarget(t0.Add(2 * time.Second).Format(time.RFC3339))
	plan, err := Plan(ctx, c.adm, group, []string{topic}, -1, target)
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(ctx, c.adm, group, plan); err != nil {
		t.Fatal(err)
	}
	assertCommitted(t, c, group, topic, map[int32]int64{0: 2, 1: 2})
}
