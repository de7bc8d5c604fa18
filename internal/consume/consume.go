// Package consume owns the Kafka client: the consumer group, polling,
// per-partition workers, pausing for backpressure, marking and committing
// offsets, and the rebalance callbacks. What happens to a batch (decoding,
// handling, dead-lettering) is internal/process's business; how records are
// cut into batches is internal/batch's.
//
// The commit protocol: a partition's worker marks the offset after the last
// record of the finished prefix of each batch; marked offsets are committed
// every KAFKA_COMMIT_INTERVAL, on revoke (after the partition's in-flight
// batch finished) and on shutdown. Nothing is committed for partitions that
// were lost. Offsets are tracked here and nowhere else.
package consume

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"msk-consumer/config"
	"msk-consumer/internal/backoff"
	"msk-consumer/internal/codec"
	"msk-consumer/internal/dlq"
	"msk-consumer/internal/handler"
	"msk-consumer/internal/health"
	"msk-consumer/internal/metrics"
	"msk-consumer/internal/process"
)

// Deps is what the consumer is built from besides its configuration.
type Deps struct {
	Key, Value codec.Decoder
	Handler    handler.Handler
	Logger     *zap.Logger
	Metrics    *metrics.Metrics
	Health     *health.Health
	// Opts are appended to the client options (hooks such as kprom and
	// kzap, or test settings).
	Opts []kgo.Opt
}

// Consumer consumes the configured topics as a group member.
type Consumer struct {
	cfg     config.Config
	client  *kgo.Client
	proc    *process.Processor
	log     *zap.Logger
	metrics *metrics.Metrics
	health  *health.Health
	sem     chan struct{} // one slot per batch in flight, across partitions

	abort    context.Context // canceled to abandon in-flight work at once
	abortAll context.CancelFunc
	fatal    chan error
	noCommit atomic.Bool // set by crash, for tests: commit nothing more

	mu       sync.Mutex
	parts    map[tp]*partition
	topicMet map[string]*metrics.Topic

	commitMu sync.Mutex // one commit at a time: snapshots never go out of order

	buffered  atomic.Int64
	pauseMu   sync.Mutex  // serialises pausing and resuming
	pausedNow atomic.Bool // changed under pauseMu; read by workers without it
}

type tp struct {
	topic     string
	partition int32
}

// New builds a consumer and its client. It does not contact the brokers.
func New(cfg config.Config, d Deps) (*Consumer, error) {
	log := d.Logger
	if log == nil {
		log = zap.NewNop()
	}
	c := &Consumer{
		cfg:      cfg,
		log:      log,
		metrics:  d.Metrics,
		health:   d.Health,
		sem:      make(chan struct{}, max(cfg.Batch.MaxInFlight, 1)),
		fatal:    make(chan error, 1),
		parts:    make(map[tp]*partition),
		topicMet: make(map[string]*metrics.Topic),
	}
	c.abort, c.abortAll = context.WithCancel(context.Background())

	opts, err := ClientOptsWith(cfg.Kafka, d.Metrics, log)
	if err != nil {
		return nil, err
	}
	start := kgo.NewOffset().AtStart()
	if cfg.Kafka.StartOffset == config.StartLatest {
		start = kgo.NewOffset().AtEnd()
	}
	// Fetches are bounded so that what the client buffers (about two
	// fetches per broker: one being polled, one in flight) stays small next
	// to MAX_BUFFERED_BYTES, which bounds what the workers hold. The fetch
	// limits count compressed bytes and the buffer decoded ones, and a fetch
	// returns at least one whole record batch, so the overshoot grows with
	// the compression ratio and the producers' batch size.
	fetchMax := int32(min(max(cfg.Batch.MaxBufferedBytes/4, 64<<10), 50<<20))
	opts = append(opts,
		kgo.ConsumerGroup(cfg.Kafka.GroupID),
		kgo.ConsumeTopics(cfg.Kafka.Topics...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(cfg.Kafka.SessionTimeout),
		kgo.HeartbeatInterval(cfg.Kafka.HeartbeatInterval),
		kgo.RebalanceTimeout(cfg.Kafka.RebalanceTimeout),
		kgo.ConsumeResetOffset(start),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(fetchMax),
		kgo.FetchMaxPartitionBytes(min(fetchMax, 1<<20)),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
		// The dead-letter producer: acks from all in-sync replicas
		// (the default, stated for the reader) and idempotent, with a
		// bound on each attempt so that a stuck write is reported and
		// retried by dlq.Writer rather than hanging silently.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(30*time.Second),
		kgo.WithHooks(&hooks{c}),
	)
	if cfg.Kafka.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.Kafka.InstanceID))
	}
	opts = append(opts, d.Opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	c.client = cl

	w := dlq.NewWriter(cl, cfg.Kafka.GroupID, cfg.DLQ.TopicFor, cfg.Batch.HandlerRetryBackoff, cfg.Batch.HandlerBackoffMax)
	w.OnError = c.dlqError
	c.proc = process.New(process.Config{
		MaxAttempts:  cfg.Batch.HandlerMaxAttempts,
		Backoff:      backoff.Policy{First: cfg.Batch.HandlerRetryBackoff, Max: cfg.Batch.HandlerBackoffMax},
		MaxRecordAge: cfg.Batch.HandlerMaxRecordAge,
		HandlerName:  cfg.Handler.Name,
	}, process.Deps{Key: d.Key, Value: d.Value, Handler: d.Handler, DLQ: w, Stalls: d.Health, Logger: log})
	return c, nil
}

func (c *Consumer) dlqError(src *kgo.Record, err error) {
	c.metrics.DLQProduceErrors.Inc()
	dest := c.cfg.DLQ.TopicFor(src.Topic)
	c.log.Error("dead-letter write failed; retrying, the partition waits",
		zap.String("topic", src.Topic), zap.Int32("partition", src.Partition), zap.Int64("offset", src.Offset),
		zap.String("dlq_topic", dest), zap.Error(err))
	c.health.Stuck(health.PartitionKey(src.Topic, src.Partition), "cannot write to dead-letter topic "+dest+": "+err.Error())
	if IsFatal(err) {
		c.fail(&FatalError{What: "writing to dead-letter topic " + dest, Err: err})
	}
}

// fail reports a fatal error to Run; the first one wins.
func (c *Consumer) fail(err error) {
	select {
	case c.fatal <- err:
	default:
	}
}

// missingConfirmations is how many answers in a row, a second apart, must
// say a topic does not exist before the service gives up on it.
const missingConfirmations = 4

// CheckTopics verifies that the topics to consume and their dead-letter
// topics exist. While the brokers cannot be reached it retries (readiness
// shows it); it returns *MissingTopicsError when the cluster says a topic
// does not exist, and *FatalError when it refuses to describe them.
func (c *Consumer) CheckTopics(ctx context.Context) error {
	adm := kadm.NewClient(c.client)
	want := map[string]bool{}
	dlqs := map[string]bool{}
	for _, t := range c.cfg.Kafka.Topics {
		want[t] = true
		dlqs[c.cfg.DLQ.TopicFor(t)] = true
	}
	all := append(sorted(want), sorted(dlqs)...)
	confirmations := 0
	for attempt := 1; ; attempt++ {
		details, err := adm.ListTopics(ctx, all...)
		if err == nil {
			missing := &MissingTopicsError{}
			for _, t := range all {
				d, ok := details[t]
				switch {
				case ok && d.Err == nil:
					continue
				case ok && IsFatal(d.Err):
					return &FatalError{What: "describing topic " + t, Err: d.Err}
				case ok && !errors.Is(d.Err, kerr.UnknownTopicOrPartition):
					err = d.Err // a transient answer: ask again
				}
				if err != nil {
					break
				}
				if want[t] {
					missing.Source = append(missing.Source, t)
				}
				if dlqs[t] && !want[t] {
					missing.DLQ = append(missing.DLQ, t)
				}
			}
			if err == nil {
				if len(missing.Source) == 0 && len(missing.DLQ) == 0 {
					return nil
				}
				// A broker's metadata can lag a topic just created (or
				// the broker just restarted): have it confirmed a few
				// times before giving up on it.
				confirmations++
				if confirmations >= missingConfirmations {
					return missing
				}
				c.log.Warn("topics not found; asking again before giving up", zap.Error(missing))
				if err := backoff.Sleep(ctx, time.Second); err != nil {
					return err
				}
				continue
			}
		}
		if IsFatal(err) {
			return &FatalError{What: "describing topics", Err: err}
		}
		c.log.Warn("cannot check topics yet; retrying", zap.Int("attempt", attempt), zap.Error(err))
		if err := backoff.Sleep(ctx, backoff.Policy{First: 500 * time.Millisecond, Max: 10 * time.Second}.Delay(attempt)); err != nil {
			return err
		}
	}
}

// Run consumes until ctx is done, then shuts down within SHUTDOWN_TIMEOUT:
// it stops fetching, lets in-flight batches finish, commits, leaves the
// group and closes the client. It returns nil after a clean shutdown, or the
// fatal error that stopped it.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.client.Close()
	if err := c.CheckTopics(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if c.cfg.Kafka.TLSInsecureSkipVerify {
		c.log.Warn("KAFKA_TLS_INSECURE_SKIP_VERIFY is on: broker certificates are not verified; use it only for local tests")
	}

	loopCtx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()
	var wg sync.WaitGroup
	wg.Go(func() { c.commitLoop(loopCtx) })

	var runErr error
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		c.pollLoop(loopCtx)
	}()
	select {
	case <-ctx.Done():
	case runErr = <-c.fatal:
		c.log.Error("stopping on a fatal error", zap.Error(runErr))
	}
	stopLoop()
	<-pollDone
	wg.Wait()
	c.shutdown(runErr != nil)
	return runErr
}

// pollLoop polls and hands records to partition workers until ctx is done.
// With BlockRebalanceOnPoll, rebalance callbacks run only between polls, so
// records are never handed to a worker of a partition already revoked.
func (c *Consumer) pollLoop(ctx context.Context) {
	tick := min(c.cfg.Kafka.HeartbeatInterval, time.Second)
	for {
		c.health.Tick()
		pollCtx, cancel := context.WithTimeout(ctx, tick)
		fetches := c.client.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			c.client.AllowRebalance()
			return
		}
		fetches.EachError(func(t string, p int32, err error) {
			switch {
			case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			case errors.Is(err, kgo.ErrClientClosed):
			case IsFatal(err):
				c.fail(&FatalError{What: "fetching", Err: err})
			default:
				c.log.Warn("fetch error; the client retries", zap.String("topic", t), zap.Int32("partition", p), zap.Error(err))
			}
		})
		now := time.Now()
		var added int64
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 {
				return
			}
			c.mu.Lock()
			p := c.parts[tp{fp.Topic, fp.Partition}]
			c.mu.Unlock()
			if p == nil {
				// Cannot happen with BlockRebalanceOnPoll; if it
				// did, the records are not ours to process and the
				// next owner fetches them from the committed offset.
				c.log.Warn("records for a partition not assigned here; dropped",
					zap.String("topic", fp.Topic), zap.Int32("partition", fp.Partition))
				return
			}
			added += p.add(fp.Records, fp.HighWatermark, now)
		})
		c.client.AllowRebalance()
		if added > 0 {
			c.addBuffered(added)
		}
	}
}

// addBuffered accounts for n bytes fetched (n > 0) or finished (n < 0) and
// pauses or resumes fetching around MAX_BUFFERED_BYTES.
func (c *Consumer) addBuffered(n int64) {
	v := c.buffered.Add(n)
	c.metrics.BufferedBytes.Set(float64(v))
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	// Read the total under the lock: another goroutine may have moved it
	// across the limit since this one's Add.
	over := c.buffered.Load() >= c.cfg.Batch.MaxBufferedBytes
	if over == c.pausedNow.Load() {
		return
	}
	c.pausedNow.Store(over)
	if over {
		c.client.PauseFetchTopics(c.cfg.Kafka.Topics...)
		c.log.Debug("buffer full; fetching paused", zap.Int64("buffered_bytes", v))
		// Workers waiting for batches to fill would wait BATCH_MAX_WAIT:
		// have them hand over what they hold. They take c.mu only via
		// owned, never pauseMu, so this cannot deadlock.
		for _, p := range c.owned() {
			p.poke()
		}
	} else {
		c.client.ResumeFetchTopics(c.cfg.Kafka.Topics...)
		c.log.Debug("buffer drained; fetching resumed", zap.Int64("buffered_bytes", v))
	}
}

func (c *Consumer) topicMetrics(topic string) *metrics.Topic {
	m := c.topicMet[topic]
	if m == nil {
		m = c.metrics.ForTopic(topic)
		c.topicMet[topic] = m
	}
	return m
}

// assigned starts a worker for each newly assigned partition.
func (c *Consumer) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	c.metrics.Rebalances.Inc()
	c.mu.Lock()
	for topic, ps := range assigned {
		for _, id := range ps {
			k := tp{topic, id}
			if c.parts[k] != nil {
				continue
			}
			p := newPartition(c, topic, id, c.topicMetrics(topic))
			c.parts[k] = p
			go p.run()
		}
	}
	total := len(c.parts)
	c.mu.Unlock()
	c.metrics.Assigned.Set(float64(total))
	c.health.Joined()
	c.log.Info("partitions assigned", zap.Any("added", assigned), zap.Int("assigned", total))
}

// revoked lets the in-flight batches of the revoked partitions finish
// (within the rebalance timeout, less a margin to commit), commits what they
// marked, and forgets them.
func (c *Consumer) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	parts := c.take(revoked)
	if len(parts) == 0 {
		return
	}
	start := time.Now()
	rt := c.cfg.Kafka.RebalanceTimeout
	c.stop(parts, start.Add(rt-rt/5))
	ctx, cancel := context.WithDeadline(ctx, start.Add(rt))
	defer cancel()
	c.commit(ctx, parts, true)
	c.forget(parts)
	c.log.Info("partitions revoked", zap.Any("revoked", revoked))
}

// lost abandons the lost partitions' work and commits nothing for them: the
// group has already given them to another member.
func (c *Consumer) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.health.Left()
	parts := c.take(lost)
	c.stop(parts, time.Now()) // abandon at once
	c.forget(parts)
	c.log.Warn("partitions lost; their uncommitted work will be redone by their new owner", zap.Any("lost", lost))
}

// take removes the named partitions from the assignment, marks them gone (so
// that no commit but the revoking one includes them) and returns them. A nil
// map takes every partition.
func (c *Consumer) take(which map[string][]int32) []*partition {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*partition
	if which == nil {
		for k, p := range c.parts {
			out = append(out, p)
			delete(c.parts, k)
		}
	} else {
		for topic, ps := range which {
			for _, id := range ps {
				k := tp{topic, id}
				if p := c.parts[k]; p != nil {
					out = append(out, p)
					delete(c.parts, k)
				}
			}
		}
	}
	for _, p := range out {
		p.gone.Store(true)
	}
	return out
}

// owned returns the partitions assigned now, leaving them assigned.
func (c *Consumer) owned() []*partition {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*partition, 0, len(c.parts))
	for _, p := range c.parts {
		out = append(out, p)
	}
	return out
}

// abandonGrace bounds the wait for workers after their work was canceled: a
// dead-letter write already sent cannot be called back, and a handler may
// ignore its context. A worker still running after it is left to finish on
// its own; its partition is gone, so nothing it marks is committed.
const abandonGrace = 5 * time.Second

// stop asks the workers to finish their in-flight batch and start no other,
// waits for them until deadline, then abandons what is still running.
func (c *Consumer) stop(parts []*partition, deadline time.Time) {
	for _, p := range parts {
		p.stop()
	}
	if !waitAll(parts, deadline) {
		c.log.Warn("in-flight batches did not finish in time; abandoning them (they will be redelivered)")
		for _, p := range parts {
			p.cancel()
		}
		if !waitAll(parts, time.Now().Add(abandonGrace)) {
			c.log.Warn("workers still running after being canceled; moving on without them")
		}
	}
}

// waitAll waits until every worker returned or deadline passed, and reports
// whether they all returned.
func waitAll(parts []*partition, deadline time.Time) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for _, p := range parts {
		select {
		case <-p.done:
		case <-timer.C:
			return false
		}
	}
	return true
}

// forget releases what stopped partitions still buffered and drops their
// metrics.
func (c *Consumer) forget(parts []*partition) {
	var freed int64
	for _, p := range parts {
		p.cancel()
		freed += p.drain()
		c.metrics.DeleteLag(p.topic, p.id)
		c.health.Unstuck(health.PartitionKey(p.topic, p.id))
	}
	if freed > 0 {
		c.addBuffered(-freed)
	}
	c.mu.Lock()
	total := len(c.parts)
	c.mu.Unlock()
	c.metrics.Assigned.Set(float64(total))
}

// commitLoop commits marked offsets every KAFKA_COMMIT_INTERVAL.
func (c *Consumer) commitLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.Kafka.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.commit(ctx, c.owned(), false)
		}
	}
}

// errRebalanced refuses a commit whose offsets were taken in an earlier
// generation of the group: the partitions may have moved since, and the
// commit could rewind their new owner.
var errRebalanced = errors.New("the group rebalanced since the offsets were taken; not committed")

// commit commits the marked offsets of parts that moved since their last
// commit, and waits for the answer. Partitions gone from this member are
// left out, unless revoking says the caller is the revoke callback, which
// commits them while the generation is still the one that owned them. The
// commit is sent only if the group's generation is still the one the offsets
// were taken in.
func (c *Consumer) commit(ctx context.Context, parts []*partition, revoking bool) {
	if c.noCommit.Load() {
		return
	}
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	offsets := map[string]map[int32]kgo.EpochOffset{}
	byTP := make(map[tp]*partition, len(parts))
	for _, p := range parts {
		if p.gone.Load() && !revoking {
			continue
		}
		eo, ok := p.toCommit()
		if !ok {
			continue
		}
		if offsets[p.topic] == nil {
			offsets[p.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[p.topic][p.id] = eo
		byTP[tp{p.topic, p.id}] = p
	}
	if len(offsets) == 0 {
		return
	}
	_, generation := c.client.GroupMetadata()
	ctx = kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		if req.Generation != generation {
			return errRebalanced
		}
		return nil
	})
	var failed error
	c.client.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			failed = err
			return
		}
		for _, t := range resp.Topics {
			for _, pr := range t.Partitions {
				if err := kerr.ErrorForCode(pr.ErrorCode); err != nil {
					failed = err
					continue
				}
				if p := byTP[tp{t.Topic, pr.Partition}]; p != nil {
					p.setCommitted(offsets[t.Topic][pr.Partition].Offset)
				}
			}
		}
	})
	switch {
	case errors.Is(failed, errRebalanced):
		c.log.Info("offset commit skipped: " + errRebalanced.Error())
	case failed != nil:
		c.metrics.Commits.WithLabelValues(metrics.OutcomeError).Inc()
		c.log.Warn("offset commit failed; the offsets stay marked and are committed next time", zap.Error(failed))
		if IsFatal(failed) {
			c.fail(&FatalError{What: "committing offsets", Err: failed})
		}
	default:
		c.metrics.Commits.WithLabelValues(metrics.OutcomeOK).Inc()
	}
}

// shutdown stops every worker within SHUTDOWN_TIMEOUT, commits, leaves the
// group and closes the client. The partitions stay assigned until the group
// takes them: a rebalance during shutdown revokes (and commits) them through
// the usual callback, and this commit leaves them out, so two members never
// commit one partition. On a fatal error it still commits what was finished.
func (c *Consumer) shutdown(fatal bool) {
	c.health.Left()
	total := c.cfg.Batch.ShutdownTimeout
	end := time.Now().Add(total)
	// Keep a fifth of the budget (at most 5s) to commit and leave.
	workEnd := end.Add(-min(total/5, 5*time.Second))
	parts := c.owned()
	c.stop(parts, workEnd)
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	c.commit(ctx, parts, false)
	if c.cfg.Kafka.InstanceID == "" && !c.noCommit.Load() {
		// Leaving runs the revoke callback for what is still assigned.
		if err := c.client.LeaveGroupContext(ctx); err != nil && !fatal {
			c.log.Warn("leaving the group failed; the group rebalances after the session timeout", zap.Error(err))
		}
	}
	c.abortAll()
	c.client.CloseAllowingRebalance()
	c.forget(c.take(nil))
	c.log.Info("consumer stopped", zap.Duration("took", total-time.Until(end)))
}

// crash stops the consumer the way a killed process would, as far as the
// group can tell: in-flight work is abandoned and nothing more is committed.
// For tests.
func (c *Consumer) crash() {
	c.noCommit.Store(true)
	c.abortAll()
}

// hooks feeds the client's connection and group events to health.
type hooks struct{ c *Consumer }

var (
	_ kgo.HookBrokerConnect    = (*hooks)(nil)
	_ kgo.HookGroupManageError = (*hooks)(nil)
)

func (h *hooks) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	h.c.health.BrokerConnect(err)
}

func (h *hooks) OnGroupManageError(err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return
	}
	h.c.health.GroupError(err)
	if IsFatal(err) {
		h.c.fail(&FatalError{What: "joining group " + h.c.cfg.Kafka.GroupID, Err: err})
		return
	}
	h.c.log.Warn("group error; rejoining", zap.Error(err))
}
