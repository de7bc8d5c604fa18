package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics the status page shares (internal/status): the lag in time
// and the dead letters by kind. Neither costs anything on the hot path:
// the lag is computed when scraped, a dead letter is counted when its copy
// is acknowledged.

// LagSecondsFunc calls emit with the lag in seconds of each partition
// whose lag in time is known: the age of its next record to handle, from
// the record's timestamp.
type LagSecondsFunc func(emit func(topic string, partition int32, seconds float64))

var lagSecondsDesc = prometheus.NewDesc("consumer_lag_seconds",
	"Age of the next record to handle of each assigned partition, from its timestamp (MSK's EstimatedTimeLag, computed by the member); 0 when every record fetched is finished and none is past them.",
	[]string{"topic", "partition"}, nil)

// lagSeconds collects consumer_lag_seconds from what SetLagSeconds set.
type lagSeconds struct{ m *Metrics }

func (c lagSeconds) Describe(ch chan<- *prometheus.Desc) { ch <- lagSecondsDesc }

func (c lagSeconds) Collect(ch chan<- prometheus.Metric) {
	fn := c.m.lagSeconds.Load()
	if fn == nil {
		return
	}
	(*fn)(func(topic string, partition int32, seconds float64) {
		ch <- prometheus.MustNewConstMetric(lagSecondsDesc, prometheus.GaugeValue, seconds, topic, strconv.Itoa(int(partition)))
	})
}

// SetLagSeconds sets what consumer_lag_seconds reads.
func (m *Metrics) SetLagSeconds(fn LagSecondsFunc) { m.lagSeconds.Store(&fn) }

// DeadLetterKinds are the values of consumer_dead_letters_total's kind
// label (dlq.error.kind), whose series exist from a topic's first batch.
var DeadLetterKinds = []string{"decode", "handler", "validation", "expired"}

// DeadLettered counts a record whose dead-letter copy was acknowledged.
func (m *Metrics) DeadLettered(topic, kind string) {
	m.DeadLetters.WithLabelValues(topic, kind).Inc()
}
