package ops

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// needShare skips the test on a real broker that does not serve share
// groups (ShareGroupHeartbeat: Kafka 4.2+ with share.version=1), such as
// make test-kafka's 3.9.2, except in a share tier (KAFKA_TEST_SHARE=1,
// make test-kafka-share), which fails there instead.
func needShare(t *testing.T, adm *kadm.Client) {
	t.Helper()
	vs, err := adm.ApiVersions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ok := true
	vs.Each(func(v kadm.BrokerApiVersions) {
		if _, has := v.KeyMaxVersion(int16(kmsg.ShareGroupHeartbeat)); !has {
			ok = false
		}
	})
	switch {
	case ok:
	case os.Getenv("KAFKA_TEST_SHARE") == "1":
		t.Fatal("KAFKA_TEST_SHARE=1, but the broker does not serve share groups (ShareGroupHeartbeat: Kafka 4.2+ with share.version=1)")
	default:
		t.Skip("the broker does not serve share groups (ShareGroupHeartbeat: Kafka 4.2+ with share.version=1)")
	}
}

// joinShareMember joins group as a share-group member consuming topic and
// returns it once the group describes it with an assignment.
func joinShareMember(t *testing.T, c *cluster, group, topic string) *kgo.Client {
	t.Helper()
	m, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.ShareGroup(group), kgo.ConsumeTopics(topic),
		kgo.ClientID("share-member-under-test"), kgo.MaxConcurrentFetches(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		m.PollFetches(pctx) // nothing to fetch: the group's start is latest
		pcancel()
		if _, owners, err := ShareGroup(ctx, c.adm, group); err == nil && len(owners[topic]) > 0 {
			return m
		}
		if ctx.Err() != nil {
			t.Fatal("the share member did not join in 30s")
		}
	}
}

func assertShareStart(t *testing.T, c *cluster, group, topic string, want map[int32]int64) {
	t.Helper()
	pos, err := sharePositions(context.Background(), c.adm, group, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	for _, po := range pos {
		if w, ok := want[po.Partition]; ok && po.Committed != w {
			t.Errorf("partition %d: got start offset %d, want %d", po.Partition, po.Committed, w)
		}
	}
}

// TestShareOffsetsAndReset: a share group's start offsets are listed per
// partition (none before the group has any), a reset is refused while the
// group has a member, naming it, and moves the start offsets once it left.
func TestShareOffsetsAndReset(t *testing.T) {
	c := startCluster(t)
	if c.kf == nil {
		needShare(t, c.adm)
	}
	topic := c.topic(t, "-src", 2, nil)
	group := c.group(t, "-share")
	seedTimed(t, c, topic, 2, 10)
	ctx := context.Background()

	pos, members, err := ShareOffsets(ctx, c.opts(), group, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 0 || len(pos) != 2 || pos[0].Committed != -1 || pos[0].Lag != 10 || !pos[0].Next.Equal(t0) {
		t.Fatalf("a group that never existed: got %+v, members %v; want no start offsets, lag 10 from the log start", pos, members)
	}

	plan, err := SharePlan(ctx, c.adm, group, []string{topic}, 0, Target{Offset: 4, text: "4"})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 1 || plan[0].Old != -1 || plan[0].New != 4 || plan[0].Delta() != -4 {
		t.Fatalf("got plan %+v, want partition 0: none → 4, skipping 4", plan)
	}
	if err := ApplyShare(ctx, c.adm, group, plan); err != nil {
		t.Fatal(err)
	}
	assertShareStart(t, c, group, topic, map[int32]int64{0: 4})
	pos, _, err = ShareOffsets(ctx, c.opts(), group, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	if pos[0].Committed != 4 || pos[0].Lag != 6 || !pos[0].Next.Equal(t0.Add(4*time.Second)) {
		t.Errorf("partition 0: got %+v, want start offset 4, lag 6, next record at t0+4s", pos[0])
	}

	m := joinShareMember(t, c, group, topic)
	pos, members, err = ShareOffsets(ctx, c.opts(), group, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || !strings.Contains(pos[0].Member, "share-member-under-test") {
		t.Errorf("got members %v and partition 0's %q, want the member assigned", members, pos[0].Member)
	}
	plan, err = SharePlan(ctx, c.adm, group, []string{topic}, -1, Target{Earliest: true, text: "earliest"})
	if err != nil {
		t.Fatal(err)
	}
	err = ApplyShare(ctx, c.adm, group, plan)
	var active *ErrActiveMembers
	if !errors.As(err, &active) || !strings.Contains(err.Error(), "share-member-under-test") {
		t.Fatalf("got %v, want the reset refused naming the member", err)
	}
	assertShareStart(t, c, group, topic, map[int32]int64{0: 4})

	m.Close() // leaves the group
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = ApplyShare(ctx, c.adm, group, plan)
		if !errors.As(err, &active) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	assertShareStart(t, c, group, topic, map[int32]int64{0: 0, 1: 0})
}
