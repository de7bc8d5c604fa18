package consume

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/internal/backoff"
	"github.com/msk-consumer/msk-consumer/internal/kafkaclient"
	"github.com/msk-consumer/msk-consumer/internal/preflight"
)

// preflight checks the cluster before the member joins the group, with a
// client of its own that is closed before Run builds the member's: the
// brokers answer, the topics and their dead-letter topics exist, and no
// dead-letter topic is compacted. It returns each dead-letter topic's
// max.message.bytes. A member that would exit on a missing topic thus
// never joins, and never makes the healthy members rebalance on each of
// its restarts. When ctx's deadline (STARTUP_TIMEOUT) passes first, it
// returns a *StartupError.
func (c *Consumer) preflight(ctx context.Context) (map[string]int32, error) {
	cl, err := kgo.NewClient(append(slices.Clone(c.opts), c.deps.Opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := c.checkTopics(ctx, adm); err != nil {
		return nil, c.startupFailure(ctx, "checking the topics", err)
	}
	limits, err := c.checkDLQConfigs(ctx, adm)
	if err != nil {
		return nil, c.startupFailure(ctx, "reading the dead-letter topics' configuration", err)
	}
	return limits, nil
}

// startupFailure turns an error of a start-up step into the error Run
// returns: a *StartupError when the step ran out of STARTUP_TIMEOUT.
func (c *Consumer) startupFailure(ctx context.Context, step string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		var last error
		if !c.conn.Seen().Reached() {
			step = "reaching the brokers"
			if c.cfg.Kafka.TLS {
				last = preflight.ProbeTLS(c.cfg.Kafka.Brokers)
			}
		}
		return c.startupError(step, last)
	}
	return err
}

// missingConfirmations is how many answers in a row, a second apart, must
// say a topic does not exist before the service gives up on it.
const missingConfirmations = 4

// checkTopics verifies that the topics to consume and their dead-letter
// topics exist. While the brokers cannot be reached it retries (readiness
// shows it); it returns *MissingTopicsError when the cluster says a topic
// does not exist, and *FatalError when it refuses to describe them.
func (c *Consumer) checkTopics(ctx context.Context, adm *kadm.Client) error {
	dlqs, want, isDLQ := c.cfg.DLQTopics(), map[string]bool{}, map[string]bool{}
	for _, t := range c.cfg.Kafka.Topics {
		want[t] = true
	}
	all := append(slices.Sorted(maps.Keys(want)), dlqs...)
	for _, t := range dlqs {
		isDLQ[t] = true
	}
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
				case ok && kafkaclient.IsFatal(d.Err):
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
				if isDLQ[t] && !want[t] {
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
		if kafkaclient.IsFatal(err) {
			return &FatalError{What: "describing topics", Err: err}
		}
		c.log.Warn("cannot check topics yet; retrying", zap.Int("attempt", attempt), zap.Error(err))
		if err := backoff.Sleep(ctx, backoff.Policy{First: 500 * time.Millisecond, Max: 10 * time.Second}.Delay(attempt)); err != nil {
			return err
		}
	}
}

// checkDLQConfigs reads the dead-letter topics' configuration: it refuses a
// compacted one (a dead-letter copy of a record with a null key would be
// rejected forever) and returns their max.message.bytes. Where reading it is
// denied, it logs one warning naming the permission and assumes Kafka's
// defaults: the dead-letter copies still fit, by leaving values out.
func (c *Consumer) checkDLQConfigs(ctx context.Context, adm *kadm.Client) (map[string]int32, error) {
	dlqs := c.cfg.DLQTopics()
	for attempt := 1; ; attempt++ {
		rcs, err := adm.DescribeTopicConfigs(ctx, dlqs...)
		if err == nil {
			limits, denied, err := c.readDLQConfigs(rcs)
			if denied {
				c.log.Warn("cannot read the dead-letter topics' configuration; assuming max.message.bytes is the broker default (1 MiB) and that they are not compacted",
					zap.Strings("dlq_topics", dlqs), zap.String("missing_permission", preflight.DescribeConfigsPermission+" (MSK IAM) or DescribeConfigs on the topics (Kafka ACLs)"))
				return limits, nil
			}
			if err == nil || errors.As(err, new(*FatalError)) {
				return limits, err
			}
		}
		if err != nil && preflight.IsDenied(err) {
			c.log.Warn("cannot read the dead-letter topics' configuration; assuming the broker defaults",
				zap.Strings("dlq_topics", dlqs), zap.String("missing_permission", preflight.DescribeConfigsPermission), zap.Error(err))
			return nil, nil
		}
		c.log.Warn("cannot read the dead-letter topics' configuration yet; retrying", zap.Int("attempt", attempt), zap.Error(err))
		if err := backoff.Sleep(ctx, backoff.Policy{First: 500 * time.Millisecond, Max: 10 * time.Second}.Delay(attempt)); err != nil {
			return nil, err
		}
	}
}

// readDLQConfigs reads cleanup.policy and max.message.bytes from the
// answer (preflight.ReadConfigs). denied reports that the answer refused
// access; err is a *FatalError for a compacted topic, or a transient error
// to retry.
func (c *Consumer) readDLQConfigs(rcs kadm.ResourceConfigs) (limits map[string]int32, denied bool, err error) {
	configs, deniedTopics, err := preflight.ReadConfigs(rcs)
	if err != nil {
		return nil, false, err
	}
	limits = map[string]int32{}
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		tc := configs[name]
		if tc.Compacted() {
			return nil, false, &FatalError{
				What: "checking dead-letter topic " + name,
				Err:  &preflight.CompactedError{Topic: name, Policy: tc.CleanupPolicy},
			}
		}
		if tc.MaxMessageBytes > 0 {
			limits[name] = tc.MaxMessageBytes
		}
	}
	return limits, len(deniedTopics) > 0, nil
}

// StartupError says that the service did not reach the brokers, check its
// topics or join its group within STARTUP_TIMEOUT. The service exits 1 with
// it, so that a deployment with a wrong broker list or listener fails its
// rollout instead of looking healthy while it consumes nothing.
type StartupError struct {
	Waiting string        // what was not done in time
	Timeout time.Duration // STARTUP_TIMEOUT
	Brokers []string      // KAFKA_BROKERS
	TLS     bool          // KAFKA_TLS
	Last    error         // the last connection or group error seen, if any
}

func (e *StartupError) Error() string {
	s := "not started within STARTUP_TIMEOUT (" + e.Timeout.String() + "): still " + e.Waiting +
		"; KAFKA_BROKERS=" + strings.Join(e.Brokers, ",")
	if e.Last != nil {
		s += "; last error: " + e.Last.Error()
	}
	// A TLS setting that does not match the listener.
	if h := preflight.TLSHint(e.TLS, e.Last); h != "" {
		s += " (" + h + ")"
	}
	return s
}

func (e *StartupError) Unwrap() error { return e.Last }

func (c *Consumer) startupError(waiting string, last error) *StartupError {
	if last == nil {
		last = c.conn.Seen().Last()
	}
	return &StartupError{
		Waiting: waiting,
		Timeout: c.cfg.Kafka.StartupTimeout,
		Brokers: c.cfg.Kafka.Brokers,
		TLS:     c.cfg.Kafka.TLS,
		Last:    last,
	}
}

// refreshEnds refreshes the end offsets of the assigned partitions, so
// that consumer_lag_records keeps growing for a partition whose fetching
// is paused (the fetches' high watermarks stop then).
func (c *Consumer) refreshEnds(ctx context.Context) {
	parts := c.owned()
	if len(parts) == 0 {
		return
	}
	topics := map[string]bool{}
	for _, p := range parts {
		topics[p.topic] = true
	}
	ends, err := kadm.NewClient(c.client).ListEndOffsets(ctx, slices.Sorted(maps.Keys(topics))...)
	if err != nil {
		c.log.Debug("cannot refresh end offsets for the lag", zap.Error(err))
		return
	}
	for _, p := range parts {
		if o, ok := ends.Lookup(p.topic, p.id); ok && o.Err == nil {
			p.setEnd(o.Offset)
		}
	}
}
