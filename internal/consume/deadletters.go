package consume

import (
	"context"
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/internal/backoff"
	"github.com/msk-consumer/msk-consumer/internal/dlq"
	"github.com/msk-consumer/msk-consumer/internal/kafkaclient"
	"github.com/msk-consumer/msk-consumer/internal/preflight"
)

// deadLetters is the consumer's dead-letter path, what every lane's write
// goes through: the dead-letter topics' limits, the writer that fits and
// retries each copy (dlq.Writer), and the report of a failed attempt (log,
// metric, fatal errors). Each partition's letters (lane.go) hold its
// writes in flight: the overlap gate, their bound in bytes, and each
// lane's stall, which the lane's write sets through its own failure path
// (letters.attemptFailed), never by looking the partition up.
//
// The limits are each dead-letter topic's max.message.bytes
// (dlq.MaxMessageBytes): read at start (checkDLQConfigs), and read again
// when a copy is refused as too large (dlq.Deps.RefreshMaxBytes), so that
// an operator who raises a topic's limit gets whole copies from then on.
// The producer's batch limit and the writer both read them.
type deadLetters struct {
	c      *Consumer
	writer *dlq.Writer  // set with the client
	adm    *kadm.Client // nil until the group client exists

	mu sync.Mutex
	m  map[string]int32
}

func newDeadLetters(c *Consumer, atStart map[string]int32) *deadLetters {
	m := make(map[string]int32, len(atStart))
	for t, n := range atStart {
		m[t] = n
	}
	return &deadLetters{c: c, m: m}
}

// start builds the writer on the group member's client cl, whose producer
// is sized by get.
func (d *deadLetters) start(cl *kgo.Client) {
	cfg := d.c.cfg
	d.adm = kadm.NewClient(cl)
	d.writer = dlq.NewWriter(dlq.Config{
		Group:    cfg.Kafka.GroupID,
		TopicFor: cfg.DLQ.TopicFor,
		Backoff:  backoff.Policy{First: cfg.Batch.HandlerRetryBackoff, Max: cfg.Batch.HandlerBackoffMax},
		MaxBytes: d.get,
	}, dlq.Deps{Producer: cl, OnValueOmitted: d.valueOmitted, OnHeadersOmitted: d.headersOmitted, RefreshMaxBytes: d.refresh,
		OnWritten: d.c.deadLettered})
}

// get is the record batch limit of a dead-letter topic: its
// max.message.bytes as last read, or Kafka's default.
func (d *deadLetters) get(topic string) int32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return dlq.MaxMessageBytes(int64(d.m[topic]))
}

var errNoLimit = errors.New("max.message.bytes not readable")

// refresh reads topic's max.message.bytes again and keeps it.
func (d *deadLetters) refresh(ctx context.Context, topic string) (int32, error) {
	if d.adm == nil {
		return 0, errNoLimit
	}
	rcs, err := d.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return 0, err
	}
	configs, _, err := preflight.ReadConfigs(rcs)
	if err != nil {
		return 0, err
	}
	n := configs[topic].MaxMessageBytes
	if n <= 0 {
		return 0, errNoLimit
	}
	d.mu.Lock()
	d.m[topic] = n
	d.mu.Unlock()
	return n, nil
}

// report logs and counts a failed attempt of a dead-letter write, fails the
// consumer on a fatal error, and returns the reason the lane's stall shows.
func (d *deadLetters) report(src *kgo.Record, err error) string {
	c := d.c
	c.metrics.DLQProduceErrors.Inc()
	dest := c.cfg.DLQ.TopicFor(src.Topic)
	c.log.Error("dead-letter write failed; retrying, the partition waits",
		zap.String("topic", src.Topic), zap.Int32("partition", src.Partition), zap.Int64("offset", src.Offset),
		zap.String("dlq_topic", dest), zap.Error(err))
	if kafkaclient.IsFatal(err) {
		c.fail(&FatalError{What: "writing to dead-letter topic " + dest, Err: err})
	}
	return "cannot write to dead-letter topic " + dest + ": " + err.Error()
}

func (d *deadLetters) valueOmitted(src *kgo.Record, dest string, limit int32) {
	d.c.log.Warn("dead-letter copy too large for its topic; writing it without the value (dlq.value.omitted holds its size)",
		zap.String("topic", src.Topic), zap.Int32("partition", src.Partition), zap.Int64("offset", src.Offset),
		zap.String("dlq_topic", dest), zap.Int32("max_message_bytes", limit), zap.Int("value_bytes", len(src.Value)))
}

func (d *deadLetters) headersOmitted(src *kgo.Record, dest string, limit int32) {
	d.c.log.Warn("dead-letter copy too large for its topic; writing it without the original's headers (dlq.headers.omitted holds how many)",
		zap.String("topic", src.Topic), zap.Int32("partition", src.Partition), zap.Int64("offset", src.Offset),
		zap.String("dlq_topic", dest), zap.Int32("max_message_bytes", limit), zap.Int("headers", len(src.Headers)))
}
