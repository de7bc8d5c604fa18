package consume

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Fetch sizing. The fetch limits that Kafka takes count compressed bytes,
// while what the client and the workers hold is decompressed: with a
// compression ratio of 10, a fetch of 16 MiB brings 160 MiB into memory.
// fetchSizer watches the ratio of the record batches read and keeps the
// fetch limits at a fixed share of MAX_BUFFERED_BYTES in decompressed
// bytes, so that memory is set by the configuration, not by the producers'
// codec.
const (
	// fetchesHeld is the most fetches the client holds at once, in flight
	// or buffered for the poll loop (kgo.MaxConcurrentFetches).
	fetchesHeld = 4
	// fetchShare is the part of MAX_BUFFERED_BYTES that one fetch may bring,
	// decompressed: with fetchesHeld fetches, the client holds at most half
	// of MAX_BUFFERED_BYTES on top of what the workers hold.
	fetchShare = 8
	// minFetch and maxFetch bound a fetch's limit in compressed bytes; a
	// fetch always returns at least one whole record batch.
	minFetch = 64 << 10
	maxFetch = 50 << 20
	// maxPartitionFetch bounds the bytes of one partition in a fetch.
	maxPartitionFetch = 1 << 20
	// minPartitionFetch is the floor of a partition's limit, compressed.
	minPartitionFetch = 16 << 10
)

type fetchSizer struct {
	budget int64 // decompressed bytes one fetch may bring
	buffer int64 // MAX_BUFFERED_BYTES
	update func(maxBytes, maxPartBytes int32)

	mu    sync.Mutex
	ratio float64 // decompressed over compressed bytes, recent batches
	known bool    // a batch was read: until then the ratio is unknown
	set   int32   // the limit last given to the client
	setP  int32   // the partition limit last given to the client
	parts int     // partitions assigned (flow's division)
}

func newFetchSizer(maxBuffered int64) *fetchSizer {
	return &fetchSizer{budget: maxBuffered / fetchShare, buffer: maxBuffered, ratio: 1, parts: 1}
}

// limits returns the fetch limits for the current ratio.
func (s *fetchSizer) limits() (maxBytes, maxPartBytes int32) {
	if !s.known {
		// Before the first batch the ratio may be anything: a first
		// fetch sized for ratio 1 would bring budget × ratio.
		return minFetch, minFetch
	}
	n := int64(float64(s.budget) / s.ratio)
	maxBytes = int32(min(max(n, minFetch), maxFetch))
	// flow pauses a partition once it holds its share of the budget, so
	// each partition can pass its share by what one fetch brought for it:
	// together by half the budget at most.
	p := int64(float64(s.buffer/2/int64(max(s.parts, 1))) / s.ratio)
	return maxBytes, int32(min(int64(maxBytes), max(p, minPartitionFetch), maxPartitionFetch))
}

// setPartitions follows the number of partitions assigned.
func (s *fetchSizer) setPartitions(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parts = max(n, 1)
	s.applyLocked()
}

// applyLocked gives the client the current limits when they moved by
// more than a fifth.
func (s *fetchSizer) applyLocked() {
	maxBytes, maxPart := s.limits()
	moved := func(a, b int32) bool { d := float64(a) / float64(b); return d < 0.8 || d > 1.25 }
	if s.update != nil && (moved(maxBytes, s.set) || moved(maxPart, s.setP)) {
		s.set, s.setP = maxBytes, maxPart
		s.update(maxBytes, maxPart)
	}
}

var _ kgo.HookFetchBatchRead = (*fetchSizer)(nil)

// OnFetchBatchRead follows the ratio: at once when it grows (memory is at
// stake), slowly when it falls, and changes the client's limits when they
// move by more than a fifth.
func (s *fetchSizer) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	if m.CompressedBytes <= 0 || m.UncompressedBytes <= 0 {
		return
	}
	r := max(float64(m.UncompressedBytes)/float64(m.CompressedBytes), 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known || r > s.ratio {
		s.known, s.ratio = true, r
	} else {
		s.ratio += (r - s.ratio) / 64
	}
	s.applyLocked()
}
