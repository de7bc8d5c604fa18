package status

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the history: a sample every 5 seconds for 15 minutes.
const (
	DefaultEvery  = 5 * time.Second
	DefaultWindow = 15 * time.Minute
)

// Totals are counters that only grow, read at each sample: the charts
// show their rate between samples.
type Totals struct {
	Records      float64 // records finished (consumer_records_total)
	Batches      float64 // batches finished (consumer_batch_duration_seconds count)
	BatchSeconds float64 // their summed durations (its sum)
}

// Sample is one point of the charts.
type Sample struct {
	Time time.Time `json:"time"`
	// LatencySeconds is the mean time of the batches finished since the
	// previous sample (consumer_batch_duration_seconds: decoding,
	// handling, retries, dead-lettering), 0 if none finished.
	LatencySeconds   float64 `json:"latency_seconds"`
	RecordsPerSecond float64 `json:"records_per_second"`
	LagRecords       int64   `json:"lag_records"` // summed over the partitions
	LagSeconds       float64 `json:"lag_seconds"` // the largest of the partitions'
}

// History is the samples of the last window, oldest first.
type History struct {
	EverySeconds  float64  `json:"every_seconds"`
	WindowSeconds float64  `json:"window_seconds"`
	Samples       []Sample `json:"samples"`
}

// Sampler keeps a ring buffer of samples, taken by Run. Its methods are
// safe for concurrent use.
type Sampler struct {
	every  time.Duration
	totals func() Totals
	src    Source

	mu    sync.Mutex
	ring  []Sample
	n     int // samples taken in all
	last  Totals
	lastT time.Time
}

// NewSampler returns a Sampler taking a sample every every (DefaultEvery
// if 0) for window (DefaultWindow if 0), from totals and the lag of src
// (either may be nil).
func NewSampler(every, window time.Duration, totals func() Totals, src Source) *Sampler {
	if every <= 0 {
		every = DefaultEvery
	}
	if window <= 0 {
		window = DefaultWindow
	}
	return &Sampler{every: every, totals: totals, src: src, ring: make([]Sample, max(int(window/every), 1))}
}

// Run samples until ctx is done.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	s.Sample(time.Now()) // the base of the first rates
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.Sample(now)
		}
	}
}

// Sample takes one sample as of now. The first one only records the
// totals: rates need two.
func (s *Sampler) Sample(now time.Time) {
	var tot Totals
	if s.totals != nil {
		tot = s.totals()
	}
	smp := Sample{Time: now}
	if s.src != nil {
		for _, p := range s.src.Snapshot(now).Partitions {
			smp.LagRecords += max(p.LagRecords, 0)
			if p.LagSeconds != nil {
				smp.LagSeconds = max(smp.LagSeconds, *p.LagSeconds)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.lastT.IsZero()
	last, lastT := s.last, s.lastT
	s.last, s.lastT = tot, now
	if first {
		return
	}
	if dt := now.Sub(lastT).Seconds(); dt > 0 {
		smp.RecordsPerSecond = max(tot.Records-last.Records, 0) / dt
	}
	if n := tot.Batches - last.Batches; n > 0 {
		smp.LatencySeconds = max(tot.BatchSeconds-last.BatchSeconds, 0) / n
	}
	s.ring[s.n%len(s.ring)] = smp
	s.n++
}

// History returns the samples kept, oldest first.
func (s *Sampler) History() History {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := History{
		EverySeconds:  s.every.Seconds(),
		WindowSeconds: (time.Duration(len(s.ring)) * s.every).Seconds(),
	}
	k := min(s.n, len(s.ring))
	h.Samples = make([]Sample, 0, k)
	for i := s.n - k; i < s.n; i++ {
		h.Samples = append(h.Samples, s.ring[i%len(s.ring)])
	}
	return h
}

// GatherTotals returns a function reading Totals from g's
// consumer_records_total and consumer_batch_duration_seconds, over every
// label. It reads the registry, not the hot path: a gather every few
// seconds.
func GatherTotals(g prometheus.Gatherer) func() Totals {
	return func() Totals {
		var t Totals
		mfs, err := g.Gather()
		if err != nil && len(mfs) == 0 {
			return t
		}
		for _, mf := range mfs {
			switch mf.GetName() {
			case "consumer_records_total":
				for _, m := range mf.GetMetric() {
					t.Records += m.GetCounter().GetValue()
				}
			case "consumer_batch_duration_seconds":
				for _, m := range mf.GetMetric() {
					t.Batches += float64(m.GetHistogram().GetSampleCount())
					t.BatchSeconds += m.GetHistogram().GetSampleSum()
				}
			}
		}
		return t
	}
}
