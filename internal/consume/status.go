package consume

import (
	"time"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/dlq"
	"github.com/msk-consumer/msk-consumer/internal/process"
	"github.com/msk-consumer/msk-consumer/internal/status"
)

// What the status page reads (internal/status). Nothing here is on the hot
// path: the state is read under its locks when the page or the metrics
// are asked for; the lanes record the batch they take under the lock they
// hold to take it (lane.flight).

var _ status.Source = (*Consumer)(nil)

// Snapshot returns the member's group, its partitions and their lanes as
// of now (status.Source).
func (c *Consumer) Snapshot(now time.Time) status.Consumer {
	out := status.Consumer{Group: status.Group{
		Type: "consumer", ID: c.cfg.Kafka.GroupID, Protocol: string(c.cfg.Kafka.GroupProtocol), Generation: -1,
	}}
	if c.isShare() {
		out.Group.Type, out.Group.Protocol = string(config.GroupTypeShare), ""
	}
	select {
	case <-c.built: // client and proc are set
	default:
		return out
	}
	if member, gen := c.client.GroupMetadata(); member != "" {
		out.Group.Member, out.Group.Generation = member, gen
	}
	calls := make(map[string]process.Call)
	for _, cl := range c.proc.Calls() {
		calls[cl.Key] = cl
	}
	parts := c.owned()
	out.Partitions = make([]status.Partition, 0, len(parts))
	for _, p := range parts {
		if !p.gone.Load() {
			out.Partitions = append(out.Partitions, p.status(now, calls))
		}
	}
	return out
}

// status returns the partition's part of the page.
func (p *partition) status(now time.Time, calls map[string]process.Call) status.Partition {
	p.mu.Lock()
	defer p.mu.Unlock()
	committed := int64(-1) // a share group commits nothing
	if p.offs != nil {
		committed = p.offs.committed
	}
	sp := status.Partition{
		Topic: p.topic, Partition: p.id,
		Committed: committed, End: p.hwm, Next: p.fin.position(),
		Paused: p.paused.Load(),
		Lanes:  make([]status.Lane, 0, len(p.lanes)),
	}
	if sp.Next >= 0 && sp.End >= sp.Next {
		sp.LagRecords = sp.End - sp.Next
	}
	if age, ok := p.lagSecondsLocked(now); ok {
		sp.LagSeconds = &age
	}
	for _, l := range p.lanes {
		sl := status.Lane{Name: l.name, Queued: l.batcher.Len()}
		if b := l.flight; !b.Since.IsZero() {
			b.AgeSeconds = now.Sub(b.Since).Seconds()
			if cl, ok := calls[l.name]; ok && cl.First >= b.FirstOffset && cl.Last <= b.LastOffset {
				b.Attempt, b.CallSeconds = cl.Attempt, now.Sub(cl.Start).Seconds()
			}
			sl.Batch = &b
		}
		sp.Lanes = append(sp.Lanes, sl)
	}
	return sp
}

// lagSecondsLocked returns the age of the next record to handle (the first
// not finished), from its timestamp: 0 if every record fetched is finished
// and none is past them; unknown (false) if some are, not fetched yet, or
// the next record has no timestamp.
// p.mu is held.
func (p *partition) lagSecondsLocked(now time.Time) (float64, bool) {
	if a, ok := p.fin.(*acks); ok {
		// A share group: the age of the oldest record this member holds;
		// unknown when it holds none (the group's backlog is not its).
		var oldest time.Time
		for r := range a.held {
			if oldest.IsZero() || r.Timestamp.Before(oldest) {
				oldest = r.Timestamp
			}
		}
		if oldest.IsZero() {
			return 0, false
		}
		return max(now.Sub(oldest).Seconds(), 0), true
	}
	if t := &p.offs.track; t.len() > 0 {
		r := t.ents[t.head].rec
		if r == nil || r.Timestamp.IsZero() {
			return 0, false // no timestamp to tell its age by
		}
		return max(now.Sub(r.Timestamp).Seconds(), 0), true
	}
	if pos := p.fin.position(); pos >= 0 && p.hwm <= pos {
		return 0, true
	}
	return 0, false
}

// deadLettered records the failures whose copies the brokers acknowledged
// (dlq.Deps.OnWritten): where they were, their kind and message, never
// their keys, values or headers.
func (c *Consumer) deadLettered(fs []dlq.Failure, at time.Time) {
	for _, f := range fs {
		c.metrics.DeadLettered(f.Record.Topic, string(f.Kind))
	}
	if c.deps.Letters == nil {
		return
	}
	ds := make([]status.DeadLetter, len(fs))
	for i, f := range fs {
		r := f.Record
		ds[i] = status.DeadLetter{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Kind: string(f.Kind), Time: at}
		if f.Err != nil {
			ds[i].Message = f.Err.Error()
		}
	}
	c.deps.Letters.Add(ds...)
}

// lagSeconds emits consumer_lag_seconds of each partition whose lag in
// time is known, when the metrics are scraped.
func (c *Consumer) lagSeconds(emit func(topic string, partition int32, seconds float64)) {
	now := time.Now()
	for _, p := range c.owned() {
		if p.gone.Load() {
			continue
		}
		p.mu.Lock()
		age, ok := p.lagSecondsLocked(now)
		p.mu.Unlock()
		if ok {
			emit(p.topic, p.id, age)
		}
	}
}
