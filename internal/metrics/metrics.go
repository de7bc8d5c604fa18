// Package metrics defines the service's own Prometheus metrics, the ones
// named in the operator contract. The Kafka client's metrics come from kprom
// and the runtime's from the Go and process collectors; this package only
// registers them next to its own. Nothing here is global: everything is
// built on the registry passed in.
package metrics

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Label values used by the service. Labels come from this fixed set and from
// topic and partition names, never from error text.
const (
	OutcomeProcessed    = "processed"
	OutcomeDeadLettered = "dead_lettered"
	// OutcomeDuplicate is a record the idempotency store had seen
	// completed: not handled again (IDEMPOTENCY_STORE).
	OutcomeDuplicate = "duplicate"
	OutcomeOK        = "ok"
	OutcomePartial   = "partial"
	OutcomeFailed    = "failed"
	OutcomeError     = "error"
	PartKey          = "key"
	PartValue        = "value"

	// AuthKindAuthenticate is the first authentication of a new
	// connection; AuthKindReauthenticate a re-authentication of a live one
	// when its session lifetime runs out (KIP-368).
	AuthKindAuthenticate   = "authenticate"
	AuthKindReauthenticate = "reauthenticate"
)

// Metrics holds the service's metrics.
type Metrics struct {
	Records        *prometheus.CounterVec // topic, outcome
	DecodeErrors   *prometheus.CounterVec // topic, part
	HandlerRetries *prometheus.CounterVec // topic
	// HandlerUnavailable counts handler attempts that found the handler
	// unavailable, and HandlerUnavailableSeconds the time partitions spent
	// waiting for it to come back, by topic.
	HandlerUnavailable        *prometheus.CounterVec // topic
	HandlerUnavailableSeconds *prometheus.CounterVec // topic
	// Bisections counts failed or rejected batches split in two to find
	// the records at fault, by topic.
	Bisections       *prometheus.CounterVec   // topic
	Batches          *prometheus.CounterVec   // topic, outcome
	BatchRecords     *prometheus.HistogramVec // topic
	BatchDuration    *prometheus.HistogramVec // topic
	Commits          *prometheus.CounterVec   // outcome
	Lag              *prometheus.GaugeVec     // topic, partition
	Assigned         prometheus.Gauge
	Rebalances       prometheus.Counter
	DLQProduceErrors prometheus.Counter
	BufferedBytes    prometheus.Gauge
	Ready            prometheus.Gauge
	// OldestBatchInFlight is the age in seconds of the oldest handler
	// call in flight (a batch, or part of one, handed to the handler and
	// not returned), read at each scrape from what SetInFlight set; 0
	// when none is in flight.
	OldestBatchInFlight prometheus.GaugeFunc
	inFlight            atomic.Pointer[func() float64]
	lagSeconds          atomic.Pointer[LagSecondsFunc] // consumer_lag_seconds (status.go)

	// DeadLetters counts the dead-letter copies acknowledged, by the
	// source topic and dlq.error.kind (status.go).
	DeadLetters *prometheus.CounterVec // topic, kind

	// KafkaAuth counts SASL authentications to the brokers by mechanism
	// (the KAFKA_AUTH value), kind (AuthKind*) and outcome (OutcomeOK,
	// OutcomeError).
	KafkaAuth *prometheus.CounterVec
	// KafkaAuthSessionLifetime is the session lifetime the broker granted
	// at the latest successful authentication, by mechanism; 0 when it set
	// none (no re-authentication required).
	KafkaAuthSessionLifetime *prometheus.GaugeVec

	// IdempotencySeconds is the latency of idempotency store calls, and
	// IdempotencyErrors the calls that failed (each retried), by operation
	// (begin, complete, release).
	IdempotencySeconds *prometheus.HistogramVec // op
	IdempotencyErrors  *prometheus.CounterVec   // op
	// IdempotencyUnkeyed counts records handled without the idempotency
	// check because they lack the IDEMPOTENCY_KEY header, and
	// IdempotencyWaits the times a batch waited for records in progress
	// under another member, by topic.
	IdempotencyUnkeyed *prometheus.CounterVec // topic
	IdempotencyWaits   *prometheus.CounterVec // topic

	// Share groups (KAFKA_GROUP_TYPE=share). ShareAcks counts the records
	// acknowledged by type (AckAccept, AckRelease, AckReject; the service
	// never rejects, the series exists to show it), ShareAckErrors the
	// acknowledgements the brokers refused or that could not be delivered
	// (the records are delivered again), ShareRenewals the lock renewals
	// sent, ShareDeliveries the delivery count of each record acquired
	// (1 on its first delivery), ShareAcquired the records acquired and
	// ShareInFlight those acquired and not yet acknowledged.
	ShareAcks       *prometheus.CounterVec   // topic, type
	ShareAckErrors  prometheus.Counter       //
	ShareRenewals   *prometheus.CounterVec   // topic
	ShareDeliveries *prometheus.HistogramVec // topic
	ShareAcquired   *prometheus.CounterVec   // topic
	ShareInFlight   prometheus.Gauge
}

// The type label of consumer_share_acknowledgements_total.
const (
	AckAccept  = "accept"
	AckRelease = "release"
	AckReject  = "reject"
)

// New registers the service's metrics on reg.
func New(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		Records: f.NewCounterVec(prometheus.CounterOpts{
			Name: "consumer_records_total",
			Help: "Records finished, by outcome: processed by the handler, dead-lettered, or duplicate (completed before, by the idempotency store: not handled again).",
		}, []string{"topic", "outcome"}),
		DecodeErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "consumer_decode_errors_total",
			Help: "Records whose key or value could not be decoded.",
		}, []string{"topic", "part"}),
		HandlerRetries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "consumer_handler_retries_total",
			Help: "Records handed to the handler again after a failed attempt.",
		}, []string{"topic"}),
		HandlerUnavailable: f.NewCounterVec(prometheus.CounterOpts{
			Name: "consumer_handler_unavailable_total",
			Help: "Handler attempts that found the handler unavailable (unreachable, timed out, refused the credentials, overloaded); retried without limit, nothing dead-lettered for them.",
		}, []string{"topic"}),
		HandlerUnavailableSeconds: f.NewCounterVec(prometheus.CounterOpts{
			Name: "consumer_handler_unavailable_seconds_total",
			Help: "Time partitions spent waiting for an unavailable handler, summed over partitions.",
		}, []string{"topic"}),
		Bisections: f.NewCounterVec(prometheus.CounterOpts{
			Name: "consumer_handler_bisections_total",
			Help: "Failed or rejected batches split in two to isolate the records at fault.",
		}, []string{"topic"}),
		Batches: f.NewCounterVec(prometheus.CounterOpts{
			Name: "consumer_batches_total",
			Help: "Batches finished, by outcome: ok (every record processed), partial (some dead-lettered), failed (all dead-lettered).",
		}, []string{"topic", "outcome"}),
		BatchRecords: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "consumer_batch_records",
			Help:    "Records per batch.",
			Buckets: []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000},
		}, []string{"topic"}),
		BatchDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "consumer_batch_duration_seconds",
			Help:    "Time from a batch being handed over to it being finished: decoding, handling, retries and dead-lettering.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"topic"}),
		Commits: f.NewCounterVec(prometheus.CounterOpts{
			Name: "consumer_commits_total",
			Help: "Offset commits, by outcome.",
		}, []string{"outcome"}),
		Lag: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "consumer_lag_records",
			Help: "Records between the partition's high watermark and the next offset to commit, as last seen by this member.",
		}, []string{"topic", "partition"}),
		Assigned: f.NewGauge(prometheus.GaugeOpts{
			Name: "consumer_assigned_partitions",
			Help: "Partitions assigned to this member.",
		}),
		Rebalances: f.NewCounter(prometheus.CounterOpts{
			Name: "consumer_rebalances_total",
			Help: "Group rebalances this member took part in (assignments received).",
		}),
		DLQProduceErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "consumer_dlq_produce_errors_total",
			Help: "Failed attempts to write a record to the dead-letter topic; each is retried.",
		}),
		BufferedBytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "consumer_buffered_bytes",
			Help: "Bytes fetched but not yet finished: keys and values, plus 256 bytes of bookkeeping per record.",
		}),
		Ready: f.NewGauge(prometheus.GaugeOpts{
			Name: "consumer_ready",
			Help: "1 when /readyz answers 200, else 0.",
		}),
		KafkaAuth: f.NewCounterVec(prometheus.CounterOpts{
			Name: "consumer_kafka_auth_total",
			Help: "SASL authentications to the brokers, by mechanism (KAFKA_AUTH), kind (authenticate: a new connection; reauthenticate: a live one whose session lifetime ran out) and outcome (ok, error).",
		}, []string{"mechanism", "kind", "outcome"}),
		KafkaAuthSessionLifetime: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "consumer_kafka_auth_session_lifetime_seconds",
			Help: "Session lifetime the broker granted at the latest successful authentication, by mechanism; the client re-authenticates before it ends. 0: no limit.",
		}, []string{"mechanism"}),
		IdempotencySeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "consumer_idempotency_store_seconds",
			Help:    "Latency of idempotency store calls (one per batch and operation), by operation: begin (look up and claim), complete, release.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"op"}),
		IdempotencyErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "consumer_idempotency_store_errors_total",
			Help: "Idempotency store calls that failed or timed out, by operation; each is retried without limit, the partition waits.",
		}, []string{"op"}),
		IdempotencyUnkeyed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "consumer_idempotency_unkeyed_records_total",
			Help: "Records without the IDEMPOTENCY_KEY header, handled without the idempotency check.",
		}, []string{"topic"}),
		IdempotencyWaits: f.NewCounterVec(prometheus.CounterOpts{
			Name: "consumer_idempotency_waits_total",
			Help: "Times a batch waited for records in progress under another member (or a crashed one, until its claim expired).",
		}, []string{"topic"}),
	}
	m.ShareAcks = f.NewCounterVec(prometheus.CounterOpts{
		Name: "consumer_share_acknowledgements_total",
		Help: "Share group records acknowledged, by topic and type: accept (handled, or its dead-letter copy acknowledged), release (not started at shutdown, or abandoned), reject (never: nothing is left to the brokers to archive).",
	}, []string{"topic", "type"})
	m.ShareAckErrors = f.NewCounter(prometheus.CounterOpts{
		Name: "consumer_share_acknowledgement_errors_total",
		Help: "Share group acknowledgements (per partition and request) the brokers refused or that could not be delivered; their records are delivered again.",
	})
	m.ShareRenewals = f.NewCounterVec(prometheus.CounterOpts{
		Name: "consumer_share_lock_renewals_total",
		Help: "Acquisition lock renewals (RENEW) sent for share group records still being worked on, by topic.",
	}, []string{"topic"})
	m.ShareDeliveries = f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "consumer_share_delivery_count",
		Help:    "The delivery count of each share group record acquired (1: its first delivery), by topic.",
		Buckets: []float64{1, 2, 3, 4, 5, 6, 8, 10},
	}, []string{"topic"})
	m.ShareAcquired = f.NewCounterVec(prometheus.CounterOpts{
		Name: "consumer_share_records_acquired_total",
		Help: "Share group records acquired by this member, by topic.",
	}, []string{"topic"})
	m.ShareInFlight = f.NewGauge(prometheus.GaugeOpts{
		Name: "consumer_share_records_in_flight",
		Help: "Share group records acquired by this member and not yet acknowledged.",
	})
	m.DeadLetters = f.NewCounterVec(prometheus.CounterOpts{
		Name: "consumer_dead_letters_total",
		Help: "Records whose dead-letter copy the brokers acknowledged, by source topic and kind (dlq.error.kind: decode, handler, validation, expired, delivery-limit).",
	}, []string{"topic", "kind"})
	if reg != nil {
		reg.MustRegister(lagSeconds{m})
	}
	// Series with fixed labels exist from the start, so that rate() and
	// alerts see a zero rather than nothing.
	m.Commits.WithLabelValues(OutcomeOK)
	m.Commits.WithLabelValues(OutcomeError)
	m.OldestBatchInFlight = f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "consumer_oldest_batch_in_flight_seconds",
		Help: "Age of the oldest handler call in flight (a batch, or part of one, handed to the handler and not returned); 0 when none is.",
	}, func() float64 {
		if fn := m.inFlight.Load(); fn != nil {
			return (*fn)()
		}
		return 0
	})
	return m
}

// SetInFlight sets what consumer_oldest_batch_in_flight_seconds reads: the
// age in seconds of the oldest handler call in flight.
func (m *Metrics) SetInFlight(fn func() float64) { m.inFlight.Store(&fn) }

// Topic is the per-topic children of the vectors, looked up once so that the
// hot path does not hash label values for every batch.
type Topic struct {
	Processed, DeadLettered       prometheus.Counter
	Duplicates                    prometheus.Counter
	Unkeyed, InProgressWaits      prometheus.Counter
	KeyErrors, ValueErrors        prometheus.Counter
	Retries                       prometheus.Counter
	Unavailable, UnavailableSecs  prometheus.Counter
	Bisections                    prometheus.Counter
	BatchOK, BatchPartial, BatchF prometheus.Counter
	BatchRecords, BatchDuration   prometheus.Observer
}

// ForTopic returns the children of the per-topic vectors for topic.
func (m *Metrics) ForTopic(topic string) *Topic {
	t := &Topic{
		Processed:       m.Records.WithLabelValues(topic, OutcomeProcessed),
		DeadLettered:    m.Records.WithLabelValues(topic, OutcomeDeadLettered),
		Duplicates:      m.Records.WithLabelValues(topic, OutcomeDuplicate),
		Unkeyed:         m.IdempotencyUnkeyed.WithLabelValues(topic),
		InProgressWaits: m.IdempotencyWaits.WithLabelValues(topic),
		KeyErrors:       m.DecodeErrors.WithLabelValues(topic, PartKey),
		ValueErrors:     m.DecodeErrors.WithLabelValues(topic, PartValue),
		Retries:         m.HandlerRetries.WithLabelValues(topic),
		Unavailable:     m.HandlerUnavailable.WithLabelValues(topic),
		UnavailableSecs: m.HandlerUnavailableSeconds.WithLabelValues(topic),
		Bisections:      m.Bisections.WithLabelValues(topic),
		BatchOK:         m.Batches.WithLabelValues(topic, OutcomeOK),
		BatchPartial:    m.Batches.WithLabelValues(topic, OutcomePartial),
		BatchF:          m.Batches.WithLabelValues(topic, OutcomeFailed),
		BatchRecords:    m.BatchRecords.WithLabelValues(topic),
		BatchDuration:   m.BatchDuration.WithLabelValues(topic),
	}
	for _, k := range DeadLetterKinds {
		m.DeadLetters.WithLabelValues(topic, k)
	}
	return t
}

// LagFor returns the lag gauge of one partition; DeleteLag removes it when
// the partition leaves this member.
func (m *Metrics) LagFor(topic string, partition int32) prometheus.Gauge {
	return m.Lag.WithLabelValues(topic, strconv.Itoa(int(partition)))
}

// DeleteLag removes the lag series of a partition this member no longer owns.
func (m *Metrics) DeleteLag(topic string, partition int32) {
	m.Lag.DeleteLabelValues(topic, strconv.Itoa(int(partition)))
}

// RegisterRuntime adds the Go runtime and process collectors to reg.
func RegisterRuntime(reg prometheus.Registerer) {
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
}

// RegisterBuildInfo adds consumer_build_info{version,commit,goversion} = 1.
func RegisterBuildInfo(reg prometheus.Registerer, version, commit, goVersion string) {
	promauto.With(reg).NewGauge(prometheus.GaugeOpts{
		Name:        "consumer_build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "goversion": goVersion},
	}).Set(1)
}
