// Package status is the status page on METRICS_ADDR: /status for a person
// (plain HTML and inline SVG, embedded, refreshing itself) and /status.json
// with the same data, for `consumer status` and for scripts.
//
// It holds the view model, the bounded record of the last dead letters, and
// the ring buffer of samples behind the charts. It reads the consumer
// through Source and the stalls through Stalls; it computes nothing on the
// hot path: the consumer's state is read when a page is asked for, and the
// counters behind the charts are read from the metrics registry every few
// seconds.
//
// What is never on either page: record keys, values or header values, and
// any configuration value but the group's name (no secret can be shown).
package status

import (
	"cmp"
	"slices"
	"time"
)

// Source is what the consumer tells the page (consume.Consumer). Snapshot
// reads its state under its own locks, and returns a copy.
type Source interface {
	Snapshot(now time.Time) Consumer
}

// Consumer is the consumer's part of the view.
type Consumer struct {
	Group      Group       `json:"group"`
	Partitions []Partition `json:"partitions"`
}

// Group is the member's place in its consumer group.
type Group struct {
	// Type is "consumer" for a consumer group; a share group (KIP-932)
	// would be "share", with no generation.
	Type       string `json:"type"`
	ID         string `json:"id"`
	Member     string `json:"member"`     // empty until joined
	Generation int32  `json:"generation"` // -1 until joined; the member epoch with KIP-848
	Protocol   string `json:"protocol"`   // KAFKA_GROUP_PROTOCOL: classic or consumer
}

// Partition is one assigned partition.
type Partition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is the last offset this member committed, -1 if none yet.
	Committed int64 `json:"committed"`
	// End is the high watermark as last seen, -1 if unknown.
	End int64 `json:"end"`
	// Next is the offset of the next record to handle (one past the
	// finished prefix), -1 if nothing was fetched yet.
	Next int64 `json:"next"`
	// LagRecords is End - Next, as consumer_lag_records.
	LagRecords int64 `json:"lag_records"`
	// LagSeconds is the age of the next record to handle, from its
	// timestamp (consumer_lag_seconds); 0 when nothing waits, null when the
	// next record was not fetched yet.
	LagSeconds *float64 `json:"lag_seconds"`
	// Paused is true while fetching is paused for backpressure.
	Paused bool   `json:"paused"`
	Lanes  []Lane `json:"lanes"`
}

// Lane is one worker of a partition.
type Lane struct {
	Name   string `json:"name"`   // as /readyz names it
	Queued int    `json:"queued"` // records waiting for a batch
	Batch  *Batch `json:"batch"`  // nil: idle
	// Stall is the reason /readyz gives for this lane, if it is stalled.
	Stall string `json:"stall,omitempty"`
}

// Batch is a lane's batch in flight.
type Batch struct {
	FirstOffset int64     `json:"first_offset"`
	LastOffset  int64     `json:"last_offset"`
	Records     int       `json:"records"`
	Since       time.Time `json:"since"`
	AgeSeconds  float64   `json:"age_seconds"`
	// Attempt is the handler attempt in flight for the batch's first
	// records (1 the first), 0 while no handler call is (decoding,
	// waiting for a slot, backing off between attempts, or writing
	// dead-letter copies).
	Attempt int `json:"attempt"`
	// CallSeconds is how long the handler call in flight has been.
	CallSeconds float64 `json:"call_seconds,omitempty"`
}

// Stall is a condition that holds work back, as /readyz names it.
type Stall struct {
	Key     string    `json:"key"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
	Seconds float64   `json:"seconds"`
	// Unready is true once it lasted UNREADY_AFTER: /readyz then lists it.
	Unready bool `json:"unready"`
}

// Stalls lists every condition that holds now (health.Health.Stalls).
type Stalls func(now time.Time) []Stall

// View is the whole page.
type View struct {
	Version       string       `json:"version"`
	Commit        string       `json:"commit"`
	Started       time.Time    `json:"started"`
	Now           time.Time    `json:"now"`
	UptimeSeconds float64      `json:"uptime_seconds"`
	Ready         bool         `json:"ready"`
	Group         Group        `json:"group"`
	Partitions    []Partition  `json:"partitions"`
	Stalls        []Stall      `json:"stalls"`
	DeadLetters   []DeadLetter `json:"dead_letters"` // newest first
	History       History      `json:"history"`
}

// Config is what a Status shows besides its sources.
type Config struct {
	Version, Commit string
	Started         time.Time
	Group           string // KAFKA_GROUP_ID, shown before the consumer is built
	Protocol        string // KAFKA_GROUP_PROTOCOL
	// UnreadyAfter is UNREADY_AFTER: a stall past it makes /readyz fail.
	UnreadyAfter time.Duration
}

// Deps are where a Status reads. Any of them may be nil: its part of the
// view is then empty.
type Deps struct {
	Source  Source
	Stalls  Stalls
	Ready   func() bool // /readyz's answer (health.Health.Ready)
	Letters *Letters
	History *Sampler
	Now     func() time.Time // nil: time.Now
}

// Status builds views. Its methods are safe for concurrent use.
type Status struct {
	cfg Config
	d   Deps
}

// New returns a Status.
func New(cfg Config, d Deps) *Status {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Status{cfg: cfg, d: d}
}

// View returns the view as of now.
func (s *Status) View() View {
	now := s.d.Now()
	v := View{
		Version: s.cfg.Version, Commit: s.cfg.Commit,
		Started: s.cfg.Started, Now: now,
		UptimeSeconds: now.Sub(s.cfg.Started).Seconds(),
		Group:         Group{Type: "consumer", ID: s.cfg.Group, Protocol: s.cfg.Protocol, Generation: -1},
		Partitions:    []Partition{},
		Stalls:        []Stall{},
		DeadLetters:   []DeadLetter{},
	}
	if s.d.Source != nil {
		c := s.d.Source.Snapshot(now)
		if c.Group.ID != "" {
			v.Group = c.Group
		}
		if c.Partitions != nil {
			v.Partitions = c.Partitions
		}
	}
	slices.SortFunc(v.Partitions, func(a, b Partition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	if s.d.Stalls != nil {
		v.Stalls = append(v.Stalls, s.d.Stalls(now)...)
	}
	slices.SortFunc(v.Stalls, func(a, b Stall) int { return cmp.Compare(a.Key, b.Key) })
	for i := range v.Stalls {
		st := &v.Stalls[i]
		d := now.Sub(st.Since)
		st.Seconds = d.Seconds()
		st.Unready = d >= s.cfg.UnreadyAfter
	}
	// A lane's stalls: its handler's (its own name) and its dead-letter
	// writes' (its name and " dead-letter").
	for pi := range v.Partitions {
		for li := range v.Partitions[pi].Lanes {
			ln := &v.Partitions[pi].Lanes[li]
			for _, st := range v.Stalls {
				if st.Key == ln.Name || st.Key == ln.Name+" dead-letter" {
					if ln.Stall != "" {
						ln.Stall += "; "
					}
					ln.Stall += st.Reason
				}
			}
		}
	}
	if s.d.Ready != nil {
		v.Ready = s.d.Ready()
	}
	if s.d.Letters != nil {
		v.DeadLetters = s.d.Letters.List()
	}
	if s.d.History != nil {
		v.History = s.d.History.History()
	}
	if v.History.Samples == nil {
		v.History.Samples = []Sample{}
	}
	return v
}
