package consume

// Share groups (KAFKA_GROUP_TYPE=share, KIP-932). The same partitions,
// lanes, flow, processor and dead-letter writes as a consumer group; what
// differs is here:
//
//   - The completion is acks: a finished record is acknowledged ACCEPT (it
//     was handled, or its dead-letter copy acknowledged), a record never
//     started RELEASE (shutdown). Nothing is ever REJECTed.
//   - franz-go accepts every record of the previous poll that has no
//     terminal acknowledgement when PollFetches is called again
//     (TestFranzGoNextPollAutoAccepts in internal/share). The poll loop
//     therefore waits until every record of its last poll was acknowledged
//     (shareGate) before it polls again, and the client fetches only while
//     polled (MaxConcurrentFetches(0)), so no record is acquired that the
//     service is not working on.
//   - While it waits, renewLoop renews (RENEW) the acquisition lock of every
//     record still held every third of the group's lock duration: a record
//     waiting on an unavailable handler, registry, store or dead-letter
//     topic, or on a slow handler, never has its lock expire, so an outage
//     never spends its delivery count.
//   - A record on the last delivery the group allows
//     (share.delivery.count.limit) whose delivery count is above 1 is
//     dead-lettered as delivery-limit before the handler sees it, then
//     accepted. The record alone does not tell a crash from a release: the
//     service itself releases only at shutdown, records it had not started,
//     so a record can also get there through limit-1 shutdowns that each
//     held it unstarted; it is then in the dead-letter topic, not lost.
//   - Partitions have no assignment callbacks: a partition is created the
//     first time a poll returns records of it and lives until shutdown.
//     Nothing is committed; there is no rebalance.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/batch"
	"github.com/msk-consumer/msk-consumer/internal/dlq"
	"github.com/msk-consumer/msk-consumer/internal/health"
	"github.com/msk-consumer/msk-consumer/internal/kafkaclient"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
	"github.com/msk-consumer/msk-consumer/internal/share"
)

// shareState is what a share-group consumer keeps besides a Consumer's.
type shareState struct {
	settings share.Settings
	gate     shareGate
}

func (c *Consumer) isShare() bool { return c.cfg.Kafka.GroupType == config.GroupTypeShare }

// shareGate counts the records of the polls not yet acknowledged; the poll
// loop polls again only at zero.
type shareGate struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed while n == 0
	g    interface{ Set(float64) }
}

func (g *shareGate) init(gauge interface{ Set(float64) }) {
	g.zero = make(chan struct{})
	close(g.zero)
	g.g = gauge
}

func (g *shareGate) add(n int) {
	if n == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == 0 && n > 0 {
		g.zero = make(chan struct{})
	}
	g.n += n
	if g.n < 0 {
		g.n = 0 // cannot happen: every record is counted once before it is acknowledged
	}
	if g.n == 0 {
		close(g.zero)
	}
	g.g.Set(float64(g.n))
}

// wait returns true once nothing is held, false if ctx ends first.
func (g *shareGate) wait(ctx context.Context) bool {
	g.mu.Lock()
	zero := g.zero
	g.mu.Unlock()
	select {
	case <-zero:
		return true
	case <-ctx.Done():
		return false
	}
}

// acks is a share-group partition's completion: the records it holds
// (acquired and not acknowledged), acknowledged as they finish. Its
// partition's mu guards it.
type acks struct {
	c               *Consumer
	topic           string
	held            map[*kgo.Record]struct{}
	accept, release interface{ Inc() }
}

var _ completion = (*acks)(nil)

func newAcks(c *Consumer, topic string) *acks {
	return &acks{
		c: c, topic: topic, held: map[*kgo.Record]struct{}{},
		accept:  c.metrics.ShareAcks.WithLabelValues(topic, metrics.AckAccept),
		release: c.metrics.ShareAcks.WithLabelValues(topic, metrics.AckRelease),
	}
}

func (a *acks) queued(r *kgo.Record) (int, bool) {
	a.held[r] = struct{}{}
	return 0, false // the brokers never deliver a partition's records again below what they gave
}

func (a *acks) finished(r *kgo.Record) (bool, int) {
	if _, ok := a.held[r]; !ok {
		return false, 0
	}
	delete(a.held, r)
	if !a.c.noCommit.Load() {
		r.Ack(kgo.AckAccept)
		a.accept.Inc()
	}
	a.c.share.gate.add(-1)
	return true, 1
}

func (a *acks) unstarted(r *kgo.Record) {
	if _, ok := a.held[r]; !ok {
		return
	}
	delete(a.held, r)
	a.releaseOne(r)
}

func (a *acks) stopped() {
	for r := range a.held {
		a.releaseOne(r)
	}
	clear(a.held)
}

func (a *acks) releaseOne(r *kgo.Record) {
	if !a.c.noCommit.Load() {
		r.Ack(kgo.AckRelease)
		a.release.Inc()
	}
	a.c.share.gate.add(-1)
}

func (a *acks) position() int64 { return -1 }

// renew sends RENEW for every record held and returns how many.
func (a *acks) renew() int {
	if a.c.noCommit.Load() {
		return 0
	}
	for r := range a.held {
		r.Ack(kgo.AckRenew)
	}
	return len(a.held)
}

// newShareClient builds the share-group member's client, with the
// dead-letter producer as newClient builds it.
func (c *Consumer) newShareClient() (*kgo.Client, error) {
	cfg := c.cfg
	// One poll acquires about what the member can work on at once:
	// MAX_IN_FLIGHT_BATCHES batches of BATCH_MAX_RECORDS, within
	// MAX_BUFFERED_BYTES. Every record it acquires is held until it is
	// acknowledged, and a record held here is one another member cannot
	// take. The limit is strict (KIP-1206's record-limit mode): in the
	// default batch-optimized mode it is soft, and a broker acquires whole
	// producer batches, thousands of records for one poll that the member
	// would hold while the others find nothing to acquire. The brokers
	// still send the whole batch around the records acquired (the client
	// decodes and drops the rest).
	maxRecords := min(cfg.Batch.MaxRecords*cfg.Batch.MaxInFlight, 1<<15)
	fetchMax := int32(min(cfg.Batch.MaxBufferedBytes, 1<<30))
	opts := append(slices.Clone(c.opts),
		kgo.ShareGroup(cfg.Kafka.GroupID),
		kgo.ConsumeTopics(cfg.Kafka.Topics...),
		kgo.MaxConcurrentFetches(0), // fetch only while polled: nothing acquired unseen
		kgo.ShareMaxRecords(int32(maxRecords)),
		kgo.ShareMaxRecordsStrict(),
		kgo.FetchMaxBytes(fetchMax),
		kgo.FetchMaxPartitionBytes(fetchMax),
		kgo.ShareAckCallback(c.shareAcked),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(30*time.Second),
		kgo.ProducerBatchMaxBytesFn(c.dlq.get),
		kgo.WithHooks(&groupHooks{c}, &shareHooks{c}),
	)
	if len(c.deps.Hooks) > 0 {
		opts = append(opts, kgo.WithHooks(c.deps.Hooks...))
	}
	return kgo.NewClient(append(opts, c.deps.Opts...)...)
}

// shareAcked counts the acknowledgements the brokers refused or that could
// not be sent: their records are delivered again (to this member or
// another), so nothing is lost, and a record accepted twice is a
// duplicate the idempotency store catches.
func (c *Consumer) shareAcked(_ *kgo.Client, rs kgo.ShareAckResults) {
	for _, r := range rs {
		if r.Err == nil || errors.Is(r.Err, kgo.ErrClientClosed) {
			continue
		}
		c.metrics.ShareAckErrors.Inc()
		c.log.Warn("share acknowledgement not taken by the brokers; its records will be delivered again",
			zap.String("topic", r.Topic), zap.Int32("partition", r.Partition), zap.Error(r.Err))
		if kafkaclient.IsFatal(r.Err) {
			c.fail(&FatalError{What: "acknowledging records of share group " + c.cfg.Kafka.GroupID, Err: r.Err})
		}
	}
}

// shareHooks tells health that the member is in the share group once a
// heartbeat of it was answered.
type shareHooks struct{ c *Consumer }

var _ kgo.HookBrokerRead = (*shareHooks)(nil)

func (h *shareHooks) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil || key != 76 { // ShareGroupHeartbeat
		return
	}
	h.c.joinOne.Do(func() {
		h.c.health.Joined()
		close(h.c.joined)
		h.c.log.Info("joined share group", zap.String("group", h.c.cfg.Kafka.GroupID))
	})
}

// prepareShare reads the group's delivery limit and lock duration and sets
// its share.auto.offset.reset from KAFKA_START_OFFSET if it has no start
// offsets yet, before the member joins. What cannot be read or set is a
// warning: the brokers' defaults, or the group's own setting, apply.
func (c *Consumer) prepareShare(ctx context.Context) error {
	cl, err := kgo.NewClient(append(slices.Clone(c.opts), c.deps.Opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	s, err := share.Read(ctx, cl, c.cfg.Kafka.GroupID)
	if err != nil {
		return c.startupFailure(ctx, "reading share group "+c.cfg.Kafka.GroupID+"'s configuration", err)
	}
	for _, w := range s.Warnings {
		c.log.Warn(w)
	}
	c.share.settings = s
	if s.DeliveryLimit < 2 {
		c.log.Warn("share group's share.delivery.count.limit is 1: a record whose only delivery ends without an acknowledgement (a member crashed holding it) is archived by the brokers unhandled, before the service can dead-letter it; set it to 2 or more",
			zap.String("group", c.cfg.Kafka.GroupID))
	}
	c.log.Info("share group settings", zap.String("group", c.cfg.Kafka.GroupID),
		zap.Int32("delivery_limit", s.DeliveryLimit), zap.String("delivery_limit_from", string(s.LimitFrom)),
		zap.Duration("lock_duration", s.LockDuration), zap.String("lock_duration_from", string(s.LockFrom)))
	start := string(c.cfg.Kafka.StartOffset)
	if t, ok := c.cfg.Kafka.StartOffset.Time(); ok {
		start = t.Format(time.RFC3339Nano)
	}
	// A share coordinator still loading (a fresh cluster creates its state
	// topic on the first share group's request) is waited for: giving up
	// would leave the group's own share.auto.offset.reset (latest by
	// default) to skip what was written before the member started.
	var applied bool
	var value string
	for backoff, warned := 250*time.Millisecond, false; ; backoff = min(2*backoff, 5*time.Second) {
		applied, value, err = share.ApplyStart(ctx, kadm.NewClient(cl), cl, c.cfg.Kafka.GroupID, start, time.Now())
		if err == nil || !kerr.IsRetriable(err) || ctx.Err() != nil {
			break
		}
		if !warned {
			warned = true
			c.log.Warn("share group's coordinator not available yet; KAFKA_START_OFFSET is applied once it is", zap.Error(err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
	switch {
	case ctx.Err() != nil:
		return c.startupFailure(ctx, "setting share group "+c.cfg.Kafka.GroupID+"'s start", ctx.Err())
	case errors.Is(err, share.ErrNoPermission):
		c.log.Warn("KAFKA_START_OFFSET not applied: " + err.Error())
	case err != nil:
		c.log.Warn("KAFKA_START_OFFSET not applied; the group's own share.auto.offset.reset applies", zap.Error(err))
	case applied:
		c.log.Info("share group has no start offsets yet: set its share.auto.offset.reset", zap.String("share.auto.offset.reset", value))
	}
	return nil
}

// sharePartition returns the partition of topic/id, created (and started)
// the first time a poll returns records of it.
func (c *Consumer) sharePartition(topic string, id int32) *partition {
	k := tp{topic, id}
	c.mu.Lock()
	p := c.parts[k]
	if p != nil {
		c.mu.Unlock()
		return p
	}
	p = newPartition(c, topic, id, c.topicMetrics(topic))
	p.offs = nil
	p.fin = newAcks(c, topic)
	p.eager = true
	p.solos = map[*lane]struct{}{}
	c.parts[k] = p
	total := len(c.parts)
	c.mu.Unlock()
	c.flow.attach(p)
	go p.run()
	c.metrics.Assigned.Set(float64(total))
	return p
}

// sharePollLoop polls, once every record of the last poll was
// acknowledged, and hands the records to their partitions until ctx is
// done.
func (c *Consumer) sharePollLoop(ctx context.Context) {
	tick := time.Second
	limit := c.share.settings.DeliveryLimit
	for {
		c.health.Tick()
		wctx, cancel := context.WithTimeout(ctx, tick)
		ok := c.share.gate.wait(wctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if !ok {
			continue // still working on the last poll's records: renewLoop holds their locks
		}
		pollCtx, cancel := context.WithTimeout(ctx, tick)
		fetches := c.client.PollFetches(pollCtx)
		cancel()
		c.fetchErrors(fetches)
		now := time.Now()
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 {
				return
			}
			p := c.sharePartition(fp.Topic, fp.Partition)
			c.metrics.ShareAcquired.WithLabelValues(fp.Topic).Add(float64(len(fp.Records)))
			deliveries := c.metrics.ShareDeliveries.WithLabelValues(fp.Topic)
			var handed, last []*kgo.Record
			for _, r := range fp.Records {
				n := r.DeliveryCount()
				deliveries.Observe(float64(n))
				if n > 1 && n >= limit {
					last = append(last, r)
					continue
				}
				handed = append(handed, r)
			}
			c.share.gate.add(len(fp.Records))
			if len(handed) > 0 {
				c.flow.add(p, p.add(handed, fp.HighWatermark, now))
			}
			if len(last) > 0 {
				c.deadLetterLimit(p, last)
			}
		})
		// Records polled as ctx ended are in no partition: closing the
		// client releases them.
	}
}

// deadLetterLimit dead-letters records on their last allowed delivery as
// delivery-limit, without handing them to the handler, and accepts each
// once its copy is acknowledged. The write is retried until it succeeds
// (the records' locks renewed meanwhile) or the partition is canceled.
func (c *Consumer) deadLetterLimit(p *partition, recs []*kgo.Record) {
	var size int64
	fs := make([]dlq.Failure, len(recs))
	p.mu.Lock()
	for i, r := range recs {
		p.fin.queued(r)
		size += int64(len(r.Key)+len(r.Value)) + recordOverhead
		fs[i] = dlq.Failure{Record: r, Kind: dlq.KindDeliveryLimit, Err: fmt.Errorf(
			"delivered %d times, the share group's limit (share.delivery.count.limit %d), after deliveries that ended without an acknowledgement: a member that crashed or lost its locks while holding it",
			r.DeliveryCount(), c.share.settings.DeliveryLimit)}
		c.log.Error("record on its last allowed delivery after unacknowledged ones (it may crash its consumer); dead-lettering it as delivery-limit without handling it",
			zap.String("topic", r.Topic), zap.Int32("partition", r.Partition), zap.Int64("offset", r.Offset), zap.Int32("delivery_count", r.DeliveryCount()))
	}
	p.mu.Unlock()
	c.flow.add(p, size)
	// If p is canceled first, the records stay unacknowledged, released
	// at shutdown.
	c.dlq.write(p, health.PartitionKey(p.topic, p.id)+" delivery-limit dead-letter", fs, func() {
		p.m.DeadLettered.Add(float64(len(recs)))
		p.finish(recs, func(int) bool { return true })
	})
}

// renewLoop renews the locks of every record held, every third of the
// group's lock duration, and sends what was acknowledged, until ctx is
// done.
func (c *Consumer) renewLoop(ctx context.Context) {
	// At most every 10s as well: franz-go closes a connection idle for
	// ConnIdleTimeout (20s), and the brokers release every record held on
	// a share session whose connection closed.
	every := min(max(c.share.settings.LockDuration/3, 10*time.Millisecond), 10*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range c.owned() {
			a, ok := p.fin.(*acks)
			if !ok {
				continue
			}
			p.mu.Lock()
			n := a.renew()
			p.mu.Unlock()
			if n > 0 {
				c.metrics.ShareRenewals.WithLabelValues(p.topic).Add(float64(n))
			}
		}
		// Acknowledgements go out with the next fetch, and the client
		// fetches only while polled: between polls they must be flushed,
		// or the renewals arrive after the locks expired (and accepted
		// records wait for the next poll).
		fctx, cancel := context.WithTimeout(ctx, every)
		_ = c.client.FlushAcks(fctx)
		cancel()
	}
}

// soloLocked starts a lane of its own for r, a redelivered record (p.mu is
// held): a batch of one, handled as soon as an in-flight slot is free,
// whatever the other records of the partition wait for. Its goroutine is
// counted with the dead-letter writes, which partition.run waits for; it
// is started from the poll loop, which has ended before any partition is
// stopped, so the count never grows while run waits.
func (p *partition) soloLocked(r *kgo.Record, size int, now time.Time) {
	name := health.PartitionKey(p.topic, p.id) + " redelivery of " + strconv.FormatInt(r.Offset, 10)
	l := &lane{p: p, name: name, solo: true,
		wake: make(chan struct{}, 1), batcher: batch.New[*kgo.Record](batch.Limits{MaxRecords: 1, MaxBytes: 1, MaxWait: time.Hour})}
	l.add(r, size, now)
	p.solos[l] = struct{}{}
	p.letters.wg.Add(1)
	go func() {
		defer p.letters.wg.Done()
		l.run()
		p.mu.Lock()
		delete(p.solos, l)
		p.mu.Unlock()
	}()
}

// shareLag sets consumer_lag_records of every partition of the share
// group: the records not yet acknowledged or archived, as the brokers
// count them (DescribeShareGroupOffsets v1, KIP-1226), else the end offset
// minus the group's start offset. It is the group's backlog, the same on
// every member, and what to scale the members on (deploy/k8s/share).
func (c *Consumer) shareLag(ctx context.Context) {
	adm := kadm.NewClient(c.client)
	ds, err := adm.DescribeShareGroupOffsets(ctx, c.cfg.Kafka.GroupID)
	if err == nil {
		err = ds[c.cfg.Kafka.GroupID].Err
	}
	if err != nil {
		c.log.Debug("cannot read the share group's start offsets for the lag", zap.Error(err))
		return
	}
	var ends kadm.ListedOffsets
	ds[c.cfg.Kafka.GroupID].Offsets.Each(func(o kadm.ShareOffset) {
		if o.Err != nil || o.StartOffset < 0 {
			return
		}
		lag := o.Lag
		if lag < 0 {
			if ends == nil {
				if ends, err = adm.ListEndOffsets(ctx, c.cfg.Kafka.Topics...); err != nil {
					return
				}
			}
			e, ok := ends.Lookup(o.Topic, o.Partition)
			if !ok || e.Err != nil {
				return
			}
			lag = max(e.Offset-o.StartOffset, 0)
		}
		c.metrics.LagFor(o.Topic, o.Partition).Set(float64(lag))
	})
}

// releaseQueued releases the records queued in p's lanes and not started
// (RELEASE), for other members, at once.
func (p *partition) releaseQueued() {
	p.mu.Lock()
	p.unstartLocked(0)
	p.mu.Unlock()
}

// shareShutdown stops polling (done by Run), releases the records not
// started, lets the batches in flight finish within the plan (renewing
// their locks), sends the acknowledgements and closes the client, which
// leaves the group and releases whatever is still held.
func (c *Consumer) shareShutdown(renewStop context.CancelFunc, renewDone <-chan struct{}) {
	c.health.Left()
	plan := c.plan
	parts := c.owned()
	for _, p := range parts {
		p.stop()
		if !c.noCommit.Load() {
			p.releaseQueued()
		}
	}
	c.stop(parts, plan.Work)
	renewStop()
	<-renewDone
	c.forget(c.take(nil)) // releases what was abandoned
	ctx, cancel := context.WithDeadline(context.Background(), plan.Commit)
	if !c.noCommit.Load() {
		if err := c.client.FlushAcks(ctx); err != nil {
			c.log.Warn("share acknowledgements not all sent before the shutdown deadline; their records will be delivered again", zap.Error(err))
		}
	}
	cancel()
	c.abortAll()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		c.client.Close()
	}()
	select {
	case <-closed:
	case <-time.After(time.Until(plan.Close())):
		c.log.Warn("the Kafka client did not close within SHUTDOWN_TIMEOUT; exiting without waiting for it")
	}
	c.log.Info("consumer stopped", zap.Duration("took", c.cfg.Batch.ShutdownTimeout-time.Until(plan.End)))
}

// noPause is flow's pauser for a share group: pausing a partition would
// leave records the client fetched for it acquired and unseen, their locks
// running out; the gate bounds what is held instead.
type noPause struct{}

func (noPause) PauseFetchPartitions(map[string][]int32) map[string][]int32 { return nil }
func (noPause) ResumeFetchPartitions(map[string][]int32)                   {}
