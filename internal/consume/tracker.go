package consume

import "github.com/twmb/franz-go/pkg/kgo"

// tracker follows the records of one partition from when they are fetched
// until every record before them is finished, so that offsets may finish
// out of order (in lanes, or while their dead-letter copies are written)
// and the committed offset is still one past the longest finished prefix.
//
// It holds one entry (24 bytes) per record between the first unfinished
// record and the last fetched one. Each of those records keeps its
// recordOverhead counted in the partition's buffered bytes until the prefix
// passes it (partition.finish), so the entries are bounded by
// MAX_BUFFERED_BYTES like the records themselves, and a lane stuck on one
// record stops its partition's fetching once the records finished after it
// fill the partition's share.
//
// Offsets are pushed in increasing order, except after the log was
// truncated under the member: the client then delivers offsets it
// delivered before (see push). A record is known by its identity, not its
// offset alone, so that the record delivered before and the one delivered
// again at its offset are never taken for each other.
//
// It is not safe for concurrent use: its partition's mu guards it.
type tracker struct {
	ents   []trackEntry // in offset order
	head   int          // ents[head:] are tracked
	last   int64        // offset of the last record pushed, if pushed
	pushed bool
	// orphans are the records not finished when the log was truncated
	// below them: they are no longer in the partition, so they count
	// for nothing in the prefix, but their finish still gives back
	// their bytes.
	orphans map[*kgo.Record]struct{}
}

type trackEntry struct {
	rec   *kgo.Record // nil once finished
	off   int64
	epoch int32
}

// push tracks a fetched record. A record at or below the last offset
// pushed means the client rewound: the log was truncated (an unclean
// leader election, data lost under a live member; franz-go reports
// ErrDataLoss and resumes at the new log end, or where ConsumeResetOffset
// says), and the records tracked from r's offset on are gone from it. push
// then forgets them (those not finished become orphans) and returns how
// many entries it dropped, with rewound true.
func (t *tracker) push(r *kgo.Record) (dropped int, rewound bool) {
	if t.pushed && r.Offset <= t.last {
		rewound = true
		live := t.ents[t.head:]
		at := t.search(r.Offset)
		for _, e := range live[at:] {
			if e.rec != nil {
				if t.orphans == nil {
					t.orphans = make(map[*kgo.Record]struct{})
				}
				t.orphans[e.rec] = struct{}{}
			}
		}
		dropped = len(live) - at
		clear(live[at:])
		t.ents = t.ents[:t.head+at]
	}
	if t.head > 0 && t.head >= len(t.ents)/2 {
		// As batch.Batcher does: keep memory for what is tracked, not
		// for all that passed through.
		n := copy(t.ents, t.ents[t.head:])
		clear(t.ents[n:])
		t.ents, t.head = t.ents[:n], 0
	}
	t.ents = append(t.ents, trackEntry{rec: r, off: r.Offset, epoch: r.LeaderEpoch})
	t.last, t.pushed = r.Offset, true
	return dropped, rewound
}

// search returns the index in ents[head:] of the first entry at or past off.
func (t *tracker) search(off int64) int {
	live := t.ents[t.head:]
	lo, hi := 0, len(live)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if live[mid].off < off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// len returns the number of records tracked.
func (t *tracker) len() int { return len(t.ents) - t.head }

// finish marks r finished. It reports whether r was tracked and not
// finished before, and returns how many records the finished prefix grew
// by and the last of them (valid when n > 0). A record not tracked
// (finished already, or forgotten by reset) changes nothing; an orphan is
// tracked but never grows the prefix.
func (t *tracker) finish(r *kgo.Record) (ok bool, n int, last trackEntry) {
	live := t.ents[t.head:]
	i := t.search(r.Offset)
	if i == len(live) || live[i].rec != r {
		if _, orphan := t.orphans[r]; orphan {
			delete(t.orphans, r)
			return true, 0, last
		}
		return false, 0, last
	}
	live[i].rec = nil
	for t.head < len(t.ents) && t.ents[t.head].rec == nil {
		last = t.ents[t.head]
		t.head++
		n++
	}
	return true, n, last
}

// reset forgets every record.
func (t *tracker) reset() {
	clear(t.ents)
	t.ents, t.head, t.pushed, t.orphans = t.ents[:0], 0, false, nil
}
