package share

// These tests pin the franz-go (v1.22.2) and kfake share-group behaviour the
// service relies on. If an upgrade changes any of it, the share pipeline's
// design (see README "Share groups") must be revisited: they are not tests of
// this package's code but of its foundations.

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	spikeTopic = "jobs"
	spikeGroup = "jobs-share"
	// lockMs is the broker's acquisition lock in these tests: short, so that
	// an expiry happens within a test, and long enough that a renewal sent
	// every third of it always lands.
	lockMs = 1000
)

// startShareCluster starts a one-broker kfake with a one-partition topic,
// a short acquisition lock, a fast lock sweep and the given delivery limit,
// sets the group's share.auto.offset.reset to earliest and produces n
// records (values "0".."n-1").
func startShareCluster(t *testing.T, limit, n int) *kfake.Cluster {
	t.Helper()
	kf, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(1, spikeTopic),
		kfake.BrokerConfigs(map[string]string{
			"group.share.record.lock.duration.ms": strconv.Itoa(lockMs),
			"share.record.lock.sweep.interval.ms": "50",
			"group.share.delivery.count.limit":    strconv.Itoa(limit),
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kf.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(kf.ListenAddrs()...), kgo.DefaultProduceTopic(spikeTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := SetAutoReset(ctx, cl, spikeGroup, "earliest"); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(strconv.Itoa(i))).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return kf
}

// member joins the share group. Fetching happens only while polling
// (MaxConcurrentFetches(0)), as the service runs it.
func member(t *testing.T, kf *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(kf.ListenAddrs()...),
		kgo.ConsumeTopics(spikeTopic),
		kgo.ShareGroup(spikeGroup),
		kgo.MaxConcurrentFetches(0),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// pollN polls until it holds want records or the wait ends; it fails the
// test on a fetch error.
func pollN(t *testing.T, cl *kgo.Client, want int, wait time.Duration) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var got []*kgo.Record
	for len(got) < want {
		fs := cl.PollRecords(ctx, want-len(got))
		if ctx.Err() != nil {
			return got
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				t.Fatalf("fetch: %v", e.Err)
			}
		}
		got = append(got, fs.Records()...)
	}
	return got
}

// startOffset is the group's share-partition start offset of partition 0:
// every record below it is acknowledged or archived.
func startOffset(t *testing.T, kf *kfake.Cluster) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kf.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ds, err := kadm.NewClient(cl).DescribeShareGroupOffsets(context.Background(), spikeGroup)
	if err != nil {
		t.Fatal(err)
	}
	d := ds[spikeGroup]
	if d.Err != nil {
		t.Fatal(d.Err)
	}
	o, ok := d.Offsets.Lookup(spikeTopic, 0)
	if !ok {
		return -1
	}
	return o.StartOffset
}

func waitStartOffset(t *testing.T, kf *kfake.Cluster, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := startOffset(t, kf)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("start offset: got %d, want %d", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFranzGoAcceptThenFlush: Ack(AckAccept) and FlushAcks finish records
// for the group: the start offset moves past them and no member gets them
// again.
func TestFranzGoAcceptThenFlush(t *testing.T) {
	kf := startShareCluster(t, 5, 10)
	a := member(t, kf)
	rs := pollN(t, a, 10, 10*time.Second)
	if len(rs) != 10 {
		t.Fatalf("polled %d records, want 10", len(rs))
	}
	for _, r := range rs {
		if r.DeliveryCount() != 1 {
			t.Fatalf("offset %d: delivery count %d, want 1", r.Offset, r.DeliveryCount())
		}
		r.Ack(kgo.AckAccept)
	}
	if err := a.FlushAcks(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitStartOffset(t, kf, 10)
	b := member(t, kf)
	if got := pollN(t, b, 1, 3*lockMs*time.Millisecond); len(got) != 0 {
		t.Fatalf("a second member got %d accepted records again", len(got))
	}
}

// TestFranzGoNextPollAutoAccepts pins the rule the share pipeline is built
// around: PollRecords ACCEPTS every record of the previous poll that has no
// terminal acknowledgement yet (a renewed one too). The pipeline therefore
// never polls again before every record of the last poll was accepted (or
// released at shutdown).
func TestFranzGoNextPollAutoAccepts(t *testing.T) {
	kf := startShareCluster(t, 5, 4)
	a := member(t, kf)
	rs := pollN(t, a, 2, 10*time.Second)
	if len(rs) != 2 {
		t.Fatalf("polled %d records, want 2", len(rs))
	}
	rs[1].Ack(kgo.AckRenew)
	pollN(t, a, 2, 10*time.Second) // accepts the first two without a word
	if err := a.FlushAcks(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitStartOffset(t, kf, 2)
}

// TestFranzGoRenewHoldsTheLock: renewing every third of the lock keeps a
// record away from other members for several lock durations, its delivery
// count stays 1, and a later Accept finishes it.
func TestFranzGoRenewHoldsTheLock(t *testing.T) {
	kf := startShareCluster(t, 5, 1)
	a := member(t, kf)
	rs := pollN(t, a, 1, 10*time.Second)
	if len(rs) != 1 {
		t.Fatalf("polled %d records, want 1", len(rs))
	}
	r := rs[0]
	first := r.AcquisitionDeadline()
	if first.IsZero() {
		t.Fatal("no acquisition deadline on a share record")
	}
	b := member(t, kf)
	hold := time.Now().Add(3 * lockMs * time.Millisecond)
	for time.Now().Before(hold) {
		r.Ack(kgo.AckRenew)
		if err := a.FlushAcks(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(lockMs / 3 * time.Millisecond)
	}
	if got := pollN(t, b, 1, lockMs/2*time.Millisecond); len(got) != 0 {
		t.Fatalf("another member got the renewed record (delivery count %d)", got[0].DeliveryCount())
	}
	r.Ack(kgo.AckAccept)
	if err := a.FlushAcks(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitStartOffset(t, kf, 1)
	// The deadline franz-go reports is the one of the fetch: a renewal
	// does not move it. The pipeline keeps its own renewal clock.
	if !r.AcquisitionDeadline().Equal(first) {
		t.Fatalf("acquisition deadline moved from %v to %v", first, r.AcquisitionDeadline())
	}
}

// TestFranzGoDeliveryCount: a lock expiry (a member that stopped without
// acknowledging: a crash), a member closed without acknowledging, and an
// explicit RELEASE each spend one delivery; the record alone does not tell
// them apart. On the limit's delivery, ending it unacknowledged once more
// archives it: no member gets it again.
func TestFranzGoDeliveryCount(t *testing.T) {
	const limit = 4
	kf := startShareCluster(t, limit, 1)

	// 1: acquired and left to expire (the member neither acks nor polls).
	a := member(t, kf)
	if rs := pollN(t, a, 1, 10*time.Second); len(rs) != 1 || rs[0].DeliveryCount() != 1 {
		t.Fatalf("delivery 1: got %d records", len(rs))
	}
	// 2: delivered again once the lock expired; this member closes without
	// acknowledging (franz-go releases what it holds on Close).
	b := member(t, kf)
	rs := pollN(t, b, 1, 10*time.Second)
	if len(rs) != 1 || rs[0].DeliveryCount() != 2 {
		t.Fatalf("after a lock expiry: got %v, want one record on delivery 2", counts(rs))
	}
	b.Close()
	// 3: explicit release.
	c := member(t, kf)
	rs = pollN(t, c, 1, 10*time.Second)
	if len(rs) != 1 || rs[0].DeliveryCount() != 3 {
		t.Fatalf("after a close without ack: got %v, want one record on delivery 3", counts(rs))
	}
	rs[0].Ack(kgo.AckRelease)
	if err := c.FlushAcks(context.Background()); err != nil {
		t.Fatal(err)
	}
	// 4 (the limit): the last delivery; releasing it archives the record.
	rs = pollN(t, c, 1, 10*time.Second)
	if len(rs) != 1 || rs[0].DeliveryCount() != limit {
		t.Fatalf("after a release: got %v, want one record on delivery %d", counts(rs), limit)
	}
	rs[0].Ack(kgo.AckRelease)
	if err := c.FlushAcks(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitStartOffset(t, kf, 1) // archived: the start offset moved past it unhandled
	if rs := pollN(t, c, 1, 3*lockMs*time.Millisecond); len(rs) != 0 {
		t.Fatalf("an archived record was delivered again: %v", counts(rs))
	}
}

// TestFranzGoCloseReleasesUnacked: Close releases what the last poll left
// unacknowledged (renewed records too), so another member gets them at once,
// without waiting for the lock, on their next delivery; what was accepted
// before Close stays accepted.
func TestFranzGoCloseReleasesUnacked(t *testing.T) {
	kf := startShareCluster(t, 5, 3)
	a := member(t, kf)
	rs := pollN(t, a, 3, 10*time.Second)
	if len(rs) != 3 {
		t.Fatalf("polled %d records, want 3", len(rs))
	}
	rs[0].Ack(kgo.AckAccept)
	rs[1].Ack(kgo.AckRenew)
	a.Close()
	b := member(t, kf)
	// Well within one lock: released, not expired.
	got := pollN(t, b, 2, lockMs/2*time.Millisecond)
	if len(got) != 2 {
		t.Fatalf("after Close another member got %v within half a lock, want offsets 1 and 2", counts(got))
	}
	for _, r := range got {
		if r.Offset == 0 {
			t.Fatal("an accepted record was delivered again")
		}
		if r.DeliveryCount() != 2 {
			t.Fatalf("offset %d: delivery count %d, want 2", r.Offset, r.DeliveryCount())
		}
	}
}

func counts(rs []*kgo.Record) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, strconv.FormatInt(r.Offset, 10)+"@"+strconv.Itoa(int(r.DeliveryCount())))
	}
	return out
}
