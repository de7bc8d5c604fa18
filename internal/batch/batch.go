// Package batch accumulates one partition's records and cuts them into
// batches bounded by count, bytes and age. It knows nothing of Kafka clients
// or handlers, and it is not safe for concurrent use: its owner (one
// partition's worker) serialises access.
package batch

import "time"

// Limits bound a batch. A batch is ready when it holds MaxRecords records,
// or MaxBytes bytes, or when its oldest record has waited MaxWait.
type Limits struct {
	MaxRecords int
	MaxBytes   int
	MaxWait    time.Duration
}

type entry[T any] struct {
	item T
	size int
	at   time.Time
}

// Batcher queues items in arrival order. Items are added with their size and
// arrival time; Take removes the next batch.
type Batcher[T any] struct {
	limits  Limits
	entries []entry[T]
	head    int // entries[head:] are queued
	bytes   int // total size of the queued entries
}

// New returns an empty Batcher with the given limits. Limits below one are
// raised to one so that a batch always makes progress.
func New[T any](l Limits) *Batcher[T] {
	l.MaxRecords = max(l.MaxRecords, 1)
	l.MaxBytes = max(l.MaxBytes, 1)
	return &Batcher[T]{limits: l}
}

// Add queues item, which counts size bytes and arrived at at.
func (b *Batcher[T]) Add(item T, size int, at time.Time) {
	if b.head > 0 && b.head >= len(b.entries)/2 {
		// Move what is queued to the front once at least half the array
		// has been taken, so that a queue that never empties (a backlog)
		// holds memory for what is queued, not for all that passed
		// through. Each entry is moved at most once per halving: amortised
		// O(1) per Add.
		n := copy(b.entries, b.entries[b.head:])
		clear(b.entries[n:])
		b.entries, b.head = b.entries[:n], 0
	}
	b.entries = append(b.entries, entry[T]{item, size, at})
	b.bytes += size
}

// Len returns the number of queued items.
func (b *Batcher[T]) Len() int { return len(b.entries) - b.head }

// Bytes returns the total size of the queued items.
func (b *Batcher[T]) Bytes() int { return b.bytes }

// Ready reports whether a batch should be handed over at now: a full batch is
// queued, or the oldest item has waited MaxWait.
func (b *Batcher[T]) Ready(now time.Time) bool {
	n := b.Len()
	if n == 0 {
		return false
	}
	return n >= b.limits.MaxRecords || b.bytes >= b.limits.MaxBytes ||
		!now.Before(b.entries[b.head].at.Add(b.limits.MaxWait))
}

// Deadline returns when the oldest queued item will have waited MaxWait, and
// false when nothing is queued.
func (b *Batcher[T]) Deadline() (time.Time, bool) {
	if b.Len() == 0 {
		return time.Time{}, false
	}
	return b.entries[b.head].at.Add(b.limits.MaxWait), true
}

// Take removes and appends to dst the next batch: the oldest items, at most
// MaxRecords of them and at most MaxBytes in total, but always at least one
// item even if it alone is larger than MaxBytes. It returns dst and the size
// of the batch in bytes.
func (b *Batcher[T]) Take(dst []T) ([]T, int) {
	size := 0
	for b.head < len(b.entries) && len(dst) < b.limits.MaxRecords {
		e := &b.entries[b.head]
		if size > 0 && size+e.size > b.limits.MaxBytes {
			break
		}
		dst = append(dst, e.item)
		size += e.size
		var zero entry[T]
		*e = zero // drop the reference so the item can be collected
		b.head++
	}
	b.bytes -= size
	return dst, size
}

// Drain removes every queued item and returns their total size.
func (b *Batcher[T]) Drain() int {
	size := b.bytes
	clear(b.entries)
	b.entries, b.head, b.bytes = b.entries[:0], 0, 0
	return size
}

// Remove removes every queued item for which drop returns true, keeping the
// others in their order, and returns the removed items' total size. drop
// is called once per queued item, oldest first.
func (b *Batcher[T]) Remove(drop func(T) bool) int {
	size := 0
	kept := b.entries[:b.head]
	for _, e := range b.entries[b.head:] {
		if drop(e.item) {
			size += e.size
			continue
		}
		kept = append(kept, e)
	}
	clear(b.entries[len(kept):])
	b.entries = kept
	b.bytes -= size
	return size
}
