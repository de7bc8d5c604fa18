// Package consume owns the consumer group: polling, per-partition workers,
// pausing for backpressure, marking and committing offsets, and the
// rebalance callbacks. How a client connects (TLS, SASL, credentials) is
// internal/kafkaclient's business; what happens to a batch (decoding,
// handling, deciding what is dead-lettered) is internal/process's; how
// records are cut into batches is internal/batch's; the shutdown's
// deadlines are internal/shutdown's plan.
//
// Owners inside the package: a partition (partition.go) queues its records
// in its lanes (lane.go) and hands the finished ones to its completion
// (completion.go); flow (flow.go) holds the in-flight slots and the
// buffered bytes; deadLetters (deadletters.go) owns the dead-letter
// writes: the topics' limits, the writer that fits and retries, each
// partition's writes in flight (bound, overlap gate, each lane's stall)
// and the report of a failed attempt, through the failing lane's own
// path; a lane only asks it healthy and send, and a share group's records
// on their last allowed delivery, which no lane holds, go through its
// write. A lane names its stalls itself (health.PartitionKey, or
// health.LaneKey when its partition has several), for its batches
// (Processor.Handle, which it also hands the batch's in-flight slot,
// laneSlot) and its dead-letter writes.
//
// # The commit protocol
//
// A partition's lanes finish records as they are handled or their
// dead-letter copies acknowledged, in any order, and hand them to the
// partition's completion (completion.go): in a classic group, offsets,
// whose tracker marks the offset one past the longest finished prefix. A
// share group (KIP-932) acknowledges each record instead, through its own
// completion (acks, share.go), with the same lanes, flow and dead-letter
// writes. Marked offsets are committed every KAFKA_COMMIT_INTERVAL, on
// revoke (after the partition's in-flight batches and dead-letter writes
// ended) and on shutdown. Offsets
// are tracked here and nowhere else. The invariants:
//
//  1. A committed offset never passes a record that is not finished: the
//     mark is only ever one past the finished prefix (partition.finish,
//     offsets, tracker).
//  2. A partition taken from this member (revoked or lost) is committed by
//     the revoke callback only, while the generation that owned it is
//     current, and never after: take sets partition.gone before the worker
//     is stopped, and every other commit leaves gone partitions out.
//  3. Nothing is committed for a lost partition: its new owner may already
//     have moved past what this member marked.
//  4. A commit carries offsets taken in the generation it is sent in: the
//     PreCommitFnContext hook refuses the request otherwise (errRebalanced).
//     With the classic protocol the coordinator accepts a commit from any
//     member of the current generation for any partition, so an offset
//     taken before a rebalance and sent after it could rewind the
//     partition's new owner. With KIP-848 (KAFKA_GROUP_PROTOCOL=consumer)
//     the generation is the member's epoch, which GroupMetadata and the
//     commit request both read from the client, so the hook refuses only a
//     commit the epoch changed under; the coordinator's STALE_MEMBER_EPOCH
//     (before Kafka 4.3) leaves the offsets marked for the next commit.
//  5. Commits go out one at a time (commitMu), so an older snapshot is
//     never committed after a newer one.
//
// franz-go's AutoCommitMarks (with MarkCommitRecords) would commit the marks
// from the client's own goroutine. It is not used because these rules are
// then spread between our callbacks and the client's internals: the revoke
// must stop the worker before the last commit of its partition, within a
// budget that shutdown can shorten (2); the generation guard (4) and the
// gone rule (2) are ours to state and test either way; and the per-partition
// record of what was committed (for the lag metric and for skipping empty
// commits) would be kept twice. A commit written here is a dozen lines more
// than marks, and every rule it follows is in this file.
// The tests that hold these invariants are in consume_test.go and
// hardening_test.go (rebalances while records flow, crashes, a dead-letter
// outage, shutdown within its budget), on kfake and on a real broker.
package consume

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/backoff"
	"github.com/msk-consumer/msk-consumer/internal/codec"
	"github.com/msk-consumer/msk-consumer/internal/health"
	"github.com/msk-consumer/msk-consumer/internal/idempotency"
	"github.com/msk-consumer/msk-consumer/internal/kafkaclient"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
	"github.com/msk-consumer/msk-consumer/internal/mskevent"
	"github.com/msk-consumer/msk-consumer/internal/preflight"
	"github.com/msk-consumer/msk-consumer/internal/process"
	"github.com/msk-consumer/msk-consumer/internal/shutdown"
	"github.com/msk-consumer/msk-consumer/internal/status"
	"github.com/msk-consumer/msk-consumer/internal/tracing"
)

// Deps is what the consumer is built from besides its configuration.
type Deps struct {
	Key, Value codec.Decoder
	Handler    handler.Handler
	Logger     *zap.Logger
	Metrics    *metrics.Metrics
	Health     *health.Health
	// Opts are appended to the options of every client the consumer
	// builds: the short-lived one that checks the cluster at start and the
	// group member (the logger, or test settings such as SASL overrides).
	Opts []kgo.Opt
	// Hooks are added to the group member's client only (kprom, whose
	// metrics can be registered once).
	Hooks []kgo.Hook
	// Idempotency, if not nil, is the idempotency store's phase of every
	// batch (IDEMPOTENCY_STORE).
	Idempotency *idempotency.Guard
	// Tracer, if not nil, traces every batch (OTEL_TRACES_EXPORTER).
	Tracer *tracing.Tracer
	// Letters, if not nil, records the dead letters acknowledged, for
	// the status page (status.go).
	Letters *status.Letters
}

// Consumer consumes the configured topics as a group member.
//
// Lock order: commitMu, then partition.mu or mu (never both), then flow.mu;
// the client's own locks come last. No lock is held across a call that
// waits for a worker or for the brokers, except commitMu across a commit.
type Consumer struct {
	cfg     config.Config
	deps    Deps
	opts    []kgo.Opt // connection options shared by every client
	client  *kgo.Client
	proc    *process.Processor
	dlq     *deadLetters // set with the client
	flow    *flow
	sizer   *fetchSizer // set with the client; tells the fetches' sizes
	log     *zap.Logger
	metrics *metrics.Metrics
	health  *health.Health
	joined  chan struct{} // closed at the first assignment
	// built is closed when Run has built everything the rebalance
	// callbacks use (flow, proc): the client may join the group, and
	// call them, as soon as it exists.
	built   chan struct{}
	joinOne sync.Once

	abort    context.Context // canceled to abandon in-flight work at once
	abortAll context.CancelFunc
	fatal    chan error
	noCommit atomic.Bool // set by crash, for tests: commit nothing more

	// stopping is closed when shutdown begins, after plan is set; waits
	// that started before (a revoke in progress) then shorten to the plan.
	stopping chan struct{}
	plan     shutdown.Plan

	mu       sync.Mutex
	parts    map[tp]*partition
	topicMet map[string]*metrics.Topic

	commitMu sync.Mutex // one commit at a time: snapshots never go out of order

	conn preflight.Conns // what the clients saw of the brokers, for start-up errors

	share shareState // KAFKA_GROUP_TYPE=share only (share.go)
}

type tp struct {
	topic     string
	partition int32
}

// New builds a consumer. It does not contact the brokers: Run does.
func New(cfg config.Config, d Deps) (*Consumer, error) {
	log := d.Logger
	if log == nil {
		log = zap.NewNop()
	}
	d.Logger = log
	c := &Consumer{
		cfg:      cfg,
		deps:     d,
		log:      log,
		metrics:  d.Metrics,
		health:   d.Health,
		joined:   make(chan struct{}),
		built:    make(chan struct{}),
		fatal:    make(chan error, 1),
		stopping: make(chan struct{}),
		parts:    make(map[tp]*partition),
		topicMet: make(map[string]*metrics.Topic),
	}
	c.abort, c.abortAll = context.WithCancel(context.Background())
	opts, err := kafkaclient.Options(cfg.Kafka, kafkaclient.Deps{Metrics: d.Metrics, Logger: log})
	if err != nil {
		return nil, err
	}
	c.opts = append(opts, kgo.WithHooks(&connHooks{c}, &c.conn))
	return c, nil
}

// newClient builds the group member's client, with the dead-letter
// producer sized to the dead-letter topics' max.message.bytes.
func (c *Consumer) newClient() (*kgo.Client, error) {
	cfg := c.cfg
	start := kgo.NewOffset().AtStart()
	if at, ok := cfg.Kafka.StartOffset.Time(); ok {
		// The first record at or after the time; the end of a partition
		// with none.
		start = kgo.NewOffset().AfterMilli(at.UnixMilli())
	} else if cfg.Kafka.StartOffset == config.StartLatest {
		start = kgo.NewOffset().AtEnd()
	}
	sizer := newFetchSizer(cfg.Batch.MaxBufferedBytes)
	fetchMax, partMax := sizer.limits()
	sizer.set, sizer.setP = fetchMax, partMax
	c.sizer = sizer
	opts := append(slices.Clone(c.opts),
		kgo.ConsumerGroup(cfg.Kafka.GroupID),
		kgo.ConsumeTopics(cfg.Kafka.Topics...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(cfg.Kafka.SessionTimeout),
		kgo.HeartbeatInterval(cfg.Kafka.HeartbeatInterval),
		kgo.RebalanceTimeout(cfg.Kafka.RebalanceTimeout),
		kgo.ConsumeResetOffset(start),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(fetchMax),
		kgo.FetchMaxPartitionBytes(partMax),
		kgo.MaxConcurrentFetches(fetchesHeld),
		// No fetch sessions (KIP-227): flow pauses and resumes single
		// partitions, and with a session the client then sent
		// incremental fetches that named no partition, which the broker
		// held for the fetch's max wait (5s) while the other partitions'
		// records waited (issue 21; TestPausedPartitionsDoNotStallFetching).
		// A full fetch names every partition it wants; what it costs is
		// the partition list in each request, a few bytes per partition.
		kgo.DisableFetchSessions(),
		// A paused partition rejoins the fetches only with the next
		// request; when every partition the fetch in flight names is
		// caught up, the broker holds it for its max wait (franz-go's
		// default: 5s) and the resumed partition's records wait with it
		// (issue 21: case 4 at 200 B; TestFetchWaitBoundsAResumedPartition).
		kgo.FetchMaxWait(fetchMaxWait),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
		// The dead-letter producer: acks from all in-sync replicas
		// (the default, stated for the reader) and idempotent, with a
		// bound on each attempt so that a stuck write is reported and
		// retried by dlq.Writer rather than hanging silently. Its batches
		// may be as large as each dead-letter topic takes.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(30*time.Second),
		kgo.ProducerBatchMaxBytesFn(c.dlq.get),
		kgo.WithHooks(&groupHooks{c}, sizer),
	)
	if len(c.deps.Hooks) > 0 {
		opts = append(opts, kgo.WithHooks(c.deps.Hooks...))
	}
	if cfg.Kafka.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.Kafka.InstanceID))
	}
	if cfg.Kafka.GroupProtocol == config.GroupConsumer {
		// KIP-848: the coordinator assigns the partitions (its "uniform"
		// assignor: franz-go takes the cooperative-sticky balancer above
		// for it) and sets the session timeout and heartbeat interval.
		// The two options above then count only if the brokers do not
		// serve KIP-848 (before Kafka 4.0) and franz-go falls back to the
		// classic protocol.
		opts = append(opts, kgo.ServerSideBalancer())
		if cfg.Kafka.SessionTimeout != config.DefaultSessionTimeout || cfg.Kafka.HeartbeatInterval != config.DefaultHeartbeatInterval {
			c.log.Warn("KAFKA_GROUP_PROTOCOL=consumer: the brokers set the session timeout and heartbeat interval (group.consumer.session.timeout.ms, group.consumer.heartbeat.interval.ms); KAFKA_SESSION_TIMEOUT and KAFKA_HEARTBEAT_INTERVAL apply only if the brokers do not support KIP-848 and the classic protocol is used",
				zap.Duration("session_timeout", cfg.Kafka.SessionTimeout), zap.Duration("heartbeat_interval", cfg.Kafka.HeartbeatInterval))
		}
	}
	cl, err := kgo.NewClient(append(opts, c.deps.Opts...)...)
	if err != nil {
		return nil, err
	}
	sizer.mu.Lock()
	sizer.update = cl.UpdateFetchMaxBytes
	sizer.mu.Unlock()
	return cl, nil
}

// fetchMaxWait is how long a broker may hold a fetch for records to
// arrive: the longest a partition that resumed waits for the fetch in
// flight without it (the Java consumer's fetch.max.wait.ms default). A
// caught-up member then sends two fetches a second per broker instead of
// one every 5s.
const fetchMaxWait = 500 * time.Millisecond

// testHookClientBuilt, if set, runs in Run right after the group client
// was built (it may be joining the group already).
var testHookClientBuilt func()

// handlerTimeout is the handler's own bound on a call: HTTP_HANDLER_TIMEOUT
// for the http handler; for lambda, LAMBDA_INVOKE_TIMEOUT for each of the
// invocations a batch of batchMaxBytes may be cut into (base64 makes its
// event about 4/3 of it, and an event stays below 6 MB); none for a Go
// handler (or log, discard). A call counts as a stall only past it.
func handlerTimeout(cfg config.Handler, batchMaxBytes int) time.Duration {
	switch cfg.Name {
	case config.HandlerHTTP:
		if cfg.HTTPTimeout <= 0 {
			return config.DefaultHTTPHandlerTimeout
		}
		return cfg.HTTPTimeout
	case config.HandlerLambda:
		t := cfg.LambdaTimeout
		if t <= 0 {
			t = config.DefaultLambdaInvokeTimeout
		}
		parts := int64(batchMaxBytes)*4/3/mskevent.MaxRequestBytes + 1
		return t * time.Duration(parts)
	}
	return 0
}

// fail reports a fatal error to Run; the first one wins.
func (c *Consumer) fail(err error) {
	select {
	case c.fatal <- err:
	default:
	}
}

// Run checks the cluster, joins the group and consumes until ctx is done,
// then shuts down within SHUTDOWN_TIMEOUT: it stops fetching, lets
// in-flight batches finish, commits, leaves the group and closes the
// client. It returns nil after a clean shutdown, or the fatal error that
// stopped it. Reaching the brokers, checking the topics and joining the
// group must all happen within STARTUP_TIMEOUT, or Run returns a
// *StartupError.
func (c *Consumer) Run(ctx context.Context) error {
	if c.cfg.Kafka.TLSInsecureSkipVerify {
		c.log.Warn("KAFKA_TLS_INSECURE_SKIP_VERIFY is on: broker certificates are not verified; use it only for local tests")
	}
	startCtx, startDone := context.WithTimeout(ctx, c.cfg.Kafka.StartupTimeout)
	defer startDone()
	atStart, err := c.preflight(startCtx)
	if err == nil && c.isShare() {
		err = c.prepareShare(startCtx)
	}
	if err != nil {
		if ctx.Err() != nil {
			c.beginShutdown() // for the phases that follow Run (Plan)
			return nil
		}
		return err
	}
	c.dlq = newDeadLetters(c, atStart)
	newClient := c.newClient
	if c.isShare() {
		newClient = c.newShareClient
	}
	cl, err := newClient()
	if err != nil {
		return err
	}
	c.client = cl
	c.dlq.start(cl)
	if testHookClientBuilt != nil {
		testHookClientBuilt()
	}
	if c.isShare() {
		c.flow = newFlow(c.cfg.Batch.MaxBufferedBytes, c.cfg.Batch.MaxInFlight, noPause{}, c.metrics.BufferedBytes)
		c.share.gate.init(c.metrics.ShareInFlight)
	} else {
		c.flow = newFlow(c.cfg.Batch.MaxBufferedBytes, c.cfg.Batch.MaxInFlight, cl, c.metrics.BufferedBytes)
		c.flow.onDivide = c.sizer.setPartitions
	}
	d := c.deps
	c.proc = process.New(process.Config{
		MaxAttempts:    c.cfg.Batch.HandlerMaxAttempts,
		Backoff:        backoff.Policy{First: c.cfg.Batch.HandlerRetryBackoff, Max: c.cfg.Batch.HandlerBackoffMax},
		MaxRecordAge:   c.cfg.Batch.HandlerMaxRecordAge,
		HandlerName:    c.cfg.Handler.Name,
		HandlerTimeout: handlerTimeout(c.cfg.Handler, c.cfg.Batch.MaxBytes),
	}, process.Deps{Key: d.Key, Value: d.Value, Handler: d.Handler, DLQ: c.dlq.writer, Stalls: d.Health, Logger: c.log,
		Idempotency: d.Idempotency, Tracer: d.Tracer})
	c.metrics.SetInFlight(func() float64 { return c.proc.OldestCall(time.Now()).Seconds() })
	c.metrics.SetLagSeconds(c.lagSeconds)
	c.health.AddCheck(c.proc.Overdue)
	close(c.built)

	loopCtx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()
	var wg sync.WaitGroup
	poll := c.pollLoop
	// The share group's renewals go on through the shutdown, while the
	// batches in flight finish; shareShutdown stops them.
	renewCtx, stopRenew := context.WithCancel(context.Background())
	defer stopRenew()
	renewDone := make(chan struct{})
	// The commit (a consumer group's) and the lag go every
	// KAFKA_COMMIT_INTERVAL.
	interval := c.cfg.Kafka.CommitInterval
	if c.isShare() {
		poll = c.sharePollLoop
		wg.Go(func() { every(loopCtx, interval, func() { c.shareLag(loopCtx) }) })
		go func() {
			defer close(renewDone)
			c.renewLoop(renewCtx)
		}()
	} else {
		close(renewDone)
		wg.Go(func() { every(loopCtx, interval, func() { c.commit(loopCtx, c.owned(), false) }) })
		wg.Go(func() { every(loopCtx, interval, func() { c.refreshEnds(loopCtx) }) })
	}
	wg.Go(func() { c.awaitJoin(loopCtx, startCtx) })

	var runErr error
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		poll(loopCtx)
	}()
	select {
	case <-ctx.Done():
	case runErr = <-c.fatal:
		c.log.Error("stopping on a fatal error", zap.Error(runErr))
	}
	// The budget starts now, also when a revoke is in progress: the
	// revoke sees stopping and finishes within the plan.
	c.beginShutdown()
	stopLoop()
	<-pollDone
	wg.Wait()
	if c.isShare() {
		c.shareShutdown(stopRenew, renewDone)
		return runErr
	}
	c.shutdown(runErr != nil)
	return runErr
}

// awaitJoin fails the consumer with a *StartupError if the group has not
// been joined when start-up ends.
func (c *Consumer) awaitJoin(ctx, startCtx context.Context) {
	select {
	case <-c.joined:
	case <-ctx.Done():
	case <-startCtx.Done():
		select {
		case <-c.joined:
		case <-ctx.Done():
		default:
			what := "joining consumer group "
			if c.isShare() {
				what = "joining share group "
			}
			c.fail(c.startupError(what+c.cfg.Kafka.GroupID, c.conn.Seen().Group))
		}
	}
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
		c.fetchErrors(fetches)
		now := time.Now()
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
			c.flow.add(p, p.add(fp.Records, fp.HighWatermark, now))
		})
		c.client.AllowRebalance()
	}
}

// fetchErrors reports the errors of a poll: a fatal one stops the
// consumer, the others are logged and retried by the client; a poll's own
// timeout and a closed client are none.
func (c *Consumer) fetchErrors(fetches kgo.Fetches) {
	fetches.EachError(func(t string, p int32, err error) {
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		case errors.Is(err, kgo.ErrClientClosed):
		case kafkaclient.IsFatal(err):
			c.fail(&FatalError{What: "fetching", Err: err})
		default:
			c.log.Warn("fetch error; the client retries", zap.String("topic", t), zap.Int32("partition", p), zap.Error(err))
		}
	})
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
	<-c.built
	c.metrics.Rebalances.Inc()
	var added []*partition
	c.mu.Lock()
	for topic, ps := range assigned {
		for _, id := range ps {
			k := tp{topic, id}
			if c.parts[k] != nil {
				continue
			}
			p := newPartition(c, topic, id, c.topicMetrics(topic))
			c.parts[k] = p
			added = append(added, p)
		}
	}
	total := len(c.parts)
	c.mu.Unlock()
	c.flow.attach(added...)
	for _, p := range added {
		go p.run()
	}
	c.metrics.Assigned.Set(float64(total))
	c.health.Joined()
	c.joinOne.Do(func() { close(c.joined) })
	c.log.Info("partitions assigned", zap.Any("added", assigned), zap.Int("assigned", total))
}

// revoked lets the in-flight batches of the revoked partitions finish
// (within the rebalance timeout, less a margin to commit), commits what they
// marked, and forgets them.
func (c *Consumer) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	<-c.built
	parts := c.take(revoked)
	if len(parts) == 0 {
		return
	}
	start := time.Now()
	rt := c.cfg.Kafka.RebalanceTimeout
	c.stop(parts, start.Add(rt-rt/5))
	// During shutdown (a revoke in progress when it began, or the one
	// leaving the group runs) the commit keeps to the shutdown's budget.
	end := start.Add(rt)
	if c.shuttingDown() {
		end = earliest(end, c.plan.End)
	}
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	c.commit(ctx, parts, true)
	c.forget(parts)
	c.log.Info("partitions revoked", zap.Any("revoked", revoked))
}

// lost abandons the lost partitions' work and commits nothing for them: the
// group has already given them to another member.
func (c *Consumer) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	<-c.built
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

// stop asks the workers to finish their in-flight batch and start no other,
// waits for them until deadline, then abandons what is still running. Once
// shutdown begins, the waits keep to its plan whenever they began.
func (c *Consumer) stop(parts []*partition, deadline time.Time) {
	for _, p := range parts {
		p.stop()
	}
	if !c.waitAll(parts, deadline, func(p shutdown.Plan) time.Time { return p.Work }) {
		c.log.Warn("in-flight batches did not finish in time; abandoning them (they will be redelivered)")
		for _, p := range parts {
			p.cancel()
		}
		if !c.waitAll(parts, time.Now().Add(shutdown.AbandonGrace), func(p shutdown.Plan) time.Time { return p.Abandon }) {
			c.log.Warn("workers still running after being canceled; moving on without them")
		}
	}
}

// waitAll waits until every worker returned or deadline passed, and reports
// whether they all returned. When shutdown begins during the wait, or had
// begun, the deadline becomes the earlier of it and limit(plan).
func (c *Consumer) waitAll(parts []*partition, deadline time.Time, limit func(shutdown.Plan) time.Time) bool {
	stopping := c.stopping
	if c.shuttingDown() {
		deadline, stopping = earliest(deadline, limit(c.plan)), nil
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for _, p := range parts {
	wait:
		for {
			select {
			case <-p.done:
				break wait
			case <-timer.C:
				return false
			case <-stopping:
				deadline, stopping = earliest(deadline, limit(c.plan)), nil
				timer.Reset(time.Until(deadline))
			}
		}
	}
	return true
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// forget releases what stopped partitions still buffered and drops their
// metrics.
func (c *Consumer) forget(parts []*partition) {
	for _, p := range parts {
		p.cancel()
		p.drain()
		c.metrics.DeleteLag(p.topic, p.id)
		for _, l := range p.lanes {
			c.health.Unstuck(l.name)
			c.health.Unstuck(deadLetterKey(l.name))
		}
	}
	c.flow.detach(parts...)
	c.mu.Lock()
	total := len(c.parts)
	c.mu.Unlock()
	c.metrics.Assigned.Set(float64(total))
}

// every calls fn every d until ctx is done.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
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
		p.mu.Lock()
		eo, ok := p.offs.toCommit()
		p.mu.Unlock()
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
					p.mu.Lock()
					p.offs.setCommitted(offsets[t.Topic][pr.Partition].Offset)
					p.mu.Unlock()
				}
			}
		}
	})
	switch {
	case errors.Is(failed, errRebalanced):
		c.log.Info("offset commit skipped: " + errRebalanced.Error())
	case errors.Is(failed, kerr.StaleMemberEpoch):
		// KIP-848 before Kafka 4.3 (KIP-1251): the coordinator bumped
		// this member's epoch while the commit was on its way, and
		// franz-go's own retries with the new epoch did not get it
		// through. Not fatal: the offsets stay marked, and the next
		// commit carries the epoch the member has then.
		c.metrics.Commits.WithLabelValues(metrics.OutcomeError).Inc()
		c.log.Info("offset commit refused: stale member epoch (KIP-848 before Kafka 4.3); the offsets stay marked and are committed next time")
	case failed != nil:
		c.metrics.Commits.WithLabelValues(metrics.OutcomeError).Inc()
		c.log.Warn("offset commit failed; the offsets stay marked and are committed next time", zap.Error(failed))
		if kafkaclient.IsFatal(failed) {
			c.fail(&FatalError{What: "committing offsets", Err: failed})
		}
	default:
		c.metrics.Commits.WithLabelValues(metrics.OutcomeOK).Inc()
	}
}

// beginShutdown starts the shutdown's clock; it is called once, by Run.
func (c *Consumer) beginShutdown() {
	c.plan = shutdown.New(time.Now(), c.cfg.Batch.ShutdownTimeout)
	close(c.stopping)
}

// Plan returns the shutdown's plan once Run returned, for the phases that
// follow it (the trace export, the metrics server); the zero Plan if Run
// returned before it consumed (a start-up error).
func (c *Consumer) Plan() shutdown.Plan { return c.plan }

func (c *Consumer) shuttingDown() bool {
	select {
	case <-c.stopping:
		return true
	default:
		return false
	}
}

// shutdown stops every worker, commits, leaves the group and closes the
// client, within the plan. The partitions stay assigned until the group
// takes them: a rebalance during shutdown revokes (and commits) them through
// the usual callback, and this commit leaves them out, so two members never
// commit one partition. On a fatal error it still commits what was
// finished. Every partition's finished work is committed, also when another
// partition's worker is still running past its deadline.
func (c *Consumer) shutdown(fatal bool) {
	c.health.Left()
	plan := c.plan
	parts := c.owned()
	c.stop(parts, plan.Work)
	ctx, cancel := context.WithDeadline(context.Background(), plan.Commit)
	c.commit(ctx, parts, false)
	cancel()
	ctx, cancel = context.WithDeadline(context.Background(), plan.End)
	defer cancel()
	if c.cfg.Kafka.InstanceID == "" && !c.noCommit.Load() {
		// Leaving runs the revoke callback for what is still assigned;
		// its waits are already past the plan's, so it only commits
		// what moved since.
		if err := c.client.LeaveGroupContext(ctx); err != nil && !fatal {
			c.log.Warn("leaving the group failed; the group rebalances after the session timeout", zap.Error(err))
		}
	}
	c.abortAll()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		if ctx.Err() != nil {
			// Leave at once without waiting (see kgo.Client.Close).
			_ = c.client.LeaveGroupContext(ctx)
		}
		c.client.CloseAllowingRebalance()
	}()
	select {
	case <-closed:
	case <-time.After(time.Until(plan.Close())):
		c.log.Warn("the Kafka client did not close within SHUTDOWN_TIMEOUT; exiting without waiting for it")
	}
	c.forget(c.take(nil))
	c.log.Info("consumer stopped", zap.Duration("took", c.cfg.Batch.ShutdownTimeout-time.Until(plan.End)))
}

// connHooks feeds every client's broker connections to health (c.conn,
// a hook too, keeps them for the start-up diagnosis).
type connHooks struct{ c *Consumer }

var _ kgo.HookBrokerConnect = (*connHooks)(nil)

func (h *connHooks) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	h.c.health.BrokerConnect(err)
}

// groupHooks feeds the group member's group events to health.
type groupHooks struct{ c *Consumer }

var _ kgo.HookGroupManageError = (*groupHooks)(nil)

func (h *groupHooks) OnGroupManageError(err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return
	}
	h.c.health.GroupError(err)
	h.c.conn.Group(err)
	if kafkaclient.IsFatal(err) {
		h.c.fail(&FatalError{What: "joining group " + h.c.cfg.Kafka.GroupID, Err: err})
		return
	}
	h.c.log.Warn("group error; rejoining", zap.Error(err))
}
