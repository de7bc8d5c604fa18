package consume

// tracker follows the records of one partition from when they are fetched
// until every record before them is finished, so that offsets may finish
// out of order (in lanes, or while their dead-letter copies are written)
// and the committed offset is still one past the longest finished prefix.
//
// It holds one entry (16 bytes) per record between the first unfinished
// record and the last fetched one. Each of those records keeps its
// recordOverhead counted in the partition's buffered bytes until the prefix
// passes it (partition.finish), so the entries are bounded by
// MAX_BUFFERED_BYTES like the records themselves, and a lane stuck on one
// record stops its partition's fetching once the records finished after it
// fill the partition's share.
//
// It is not safe for concurrent use: its partition's mu guards it.
type tracker struct {
	ents []trackEntry // in offset order
	head int          // ents[head:] are tracked
}

type trackEntry struct {
	off   int64
	epoch int32
	done  bool
}

// push tracks a fetched record; offsets are pushed in increasing order.
func (t *tracker) push(off int64, epoch int32) {
	if t.head > 0 && t.head >= len(t.ents)/2 {
		// As batch.Batcher does: keep memory for what is tracked, not
		// for all that passed through.
		n := copy(t.ents, t.ents[t.head:])
		t.ents, t.head = t.ents[:n], 0
	}
	t.ents = append(t.ents, trackEntry{off: off, epoch: epoch})
}

// len returns the number of records tracked.
func (t *tracker) len() int { return len(t.ents) - t.head }

// finish marks the record at off finished. It reports whether the record
// was tracked and not finished before, and returns how many records the
// finished prefix grew by and the last of them (valid when n > 0). An
// offset not tracked (finished already, or never fetched) changes nothing.
func (t *tracker) finish(off int64) (ok bool, n int, last trackEntry) {
	live := t.ents[t.head:]
	// Binary search: entries are in offset order.
	lo, hi := 0, len(live)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if live[mid].off < off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(live) || live[lo].off != off || live[lo].done {
		return false, 0, last
	}
	live[lo].done = true
	for t.head < len(t.ents) && t.ents[t.head].done {
		last = t.ents[t.head]
		t.head++
		n++
	}
	return true, n, last
}

// reset forgets every record.
func (t *tracker) reset() { t.ents, t.head = t.ents[:0], 0 }
