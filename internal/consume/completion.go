package consume

import "github.com/twmb/franz-go/pkg/kgo"

// completion is what becomes of a partition's records: the one place that
// knows whether finishing a record means moving an offset to commit
// (classic consumer groups: offsets) or acknowledging it to the broker
// (share groups, KIP-932: an implementation calling Record.Ack). The
// partition tells it every record in the order below, and nothing else of
// the pipeline (lanes, flow, the dead-letter writes) depends on which it is.
//
// For any record: queued once, then finished or unstarted at most once, or
// neither if the partition stops first (stopped). Every method is called
// with partition.mu held, so it must not block; a share implementation
// that renews the locks of records waiting keeps its own goroutine and
// takes partition.mu to read what it holds.
type completion interface {
	// queued is told each fetched record, in fetch order, before a lane
	// queues it. rewound reports that r is at or below an offset queued
	// before and that the records queued from r's offset on are gone
	// from the log (classic: the log was truncated under the member):
	// the partition then drops them from its lanes' queues, telling
	// unstarted of each. released is how many records' recordOverhead the
	// completion stopped holding.
	queued(r *kgo.Record) (released int, rewound bool)
	// finished is told a record a lane finished: handled, or its
	// dead-letter copy acknowledged. It reports whether r was queued and
	// not finished before (only then are its key and value bytes given
	// back), and how many records' recordOverhead it gives back (classic:
	// those the finished prefix passed; share: r's).
	finished(r *kgo.Record) (ok bool, released int)
	// unstarted is told a queued record dropped without being started:
	// after a rewind, and when a stopped partition is drained. Classic:
	// forgotten, redelivered from the committed offset; share: released
	// for redelivery (AckRelease).
	unstarted(r *kgo.Record)
	// stopped is told when the partition is drained, after every lane and
	// dead-letter write returned and every record still queued was told
	// unstarted: records started and never finished (abandoned) are
	// forgotten (classic) or released (share).
	stopped()
	// position is the offset the partition's consumption has reached, for
	// the lag metric (classic: the offset to commit); -1 if none.
	position() int64
}

// offsets is the classic group's completion: the tracker, which turns the
// records finished out of order into the offset to commit, one past the
// longest finished prefix, and the record of what was committed. Its
// partition's mu guards it.
type offsets struct {
	track     tracker
	base      int64 // first offset fetched, for lag before anything is marked
	next      int64 // offset to commit: one past the finished prefix; -1 if none
	epoch     int32 // leader epoch of the last record of the finished prefix
	committed int64 // last committed offset; -1 if none by this member (or since a rewind)
	rewinds   int   // times the client rewound below offsets delivered before
	sentAt    int   // rewinds when toCommit last returned an offset
}

var _ completion = (*offsets)(nil)

func newOffsets() *offsets { return &offsets{base: -1, next: -1, committed: -1} }

func (o *offsets) queued(r *kgo.Record) (int, bool) {
	dropped, rewound := o.track.push(r)
	if rewound {
		o.rewound(r.Offset)
	}
	if o.base < 0 {
		o.base = r.Offset
	}
	return dropped, rewound
}

func (o *offsets) finished(r *kgo.Record) (bool, int) {
	ok, n, last := o.track.finish(r)
	if n > 0 {
		o.next, o.epoch = last.off+1, last.epoch
	}
	return ok, n
}

// unstarted forgets r if a rewind made it an orphan; a record of the log
// stays unfinished, so the prefix never passes it.
func (o *offsets) unstarted(r *kgo.Record) { delete(o.track.orphans, r) }

func (o *offsets) stopped() { o.track.reset() }

func (o *offsets) position() int64 {
	if o.next < 0 {
		return o.base
	}
	return o.next
}

// rewound follows the client back to off, below offsets it delivered
// before (tracker.push): the records from off on are new ones, so the
// offset to commit may not stay past off, and a commit at or past off made
// before must be followed by one below it, or a restart would skip the new
// records.
func (o *offsets) rewound(off int64) {
	o.rewinds++
	if o.next > off {
		o.next, o.epoch = off, -1
	}
	if o.committed >= off {
		o.committed = -1
	}
	if o.next < 0 {
		o.base = off
	}
}

// toCommit returns the marked offset if it moved past the last commit.
func (o *offsets) toCommit() (kgo.EpochOffset, bool) {
	if o.next < 0 || o.next <= o.committed {
		return kgo.EpochOffset{}, false
	}
	o.sentAt = o.rewinds
	return kgo.EpochOffset{Epoch: o.epoch, Offset: o.next}, true
}

// setCommitted records the commit of the offset toCommit returned last,
// unless the partition rewound since it was taken.
func (o *offsets) setCommitted(offset int64) {
	if o.sentAt == o.rewinds {
		o.committed = max(o.committed, offset)
	}
}
