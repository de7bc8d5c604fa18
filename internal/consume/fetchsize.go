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
)

type fetchSizer struct {
	budget int64 // decompressed bytes one fetch may bring
	update func(maxBytes, maxPartBytes int32)

	mu    sync.Mutex
	ratio float64 // decompressed over compressed bytes, recent batches
	set   int32   // the limit last given to the client
}

func newFetchSizer(maxBuffered int64) *fetchSizer {
	return &fetchSizer{budget: maxBuffered / fetchShare, ratio: 1}
}

// limits returns the fetch limits for the current ratio.
func (s *fetchSizer) limits() (maxBytes, maxPartBytes int32) {
	n := int64(float64(s.budget) / s.ratio)
	maxBytes = int32(min(max(n, minFetch), maxFetch))
	return maxBytes, min(maxBytes, maxPartitionFetch)
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
	if r > s.ratio {
		s.ratio = r
	} else {
		s.ratio += (r - s.ratio) / 64
	}
	maxBytes, maxPart := s.limits()
	if d := float64(maxBytes) / float64(s.set); s.update != nil && (d < 0.8 || d > 1.25) {
		s.set = maxBytes
		s.update(maxBytes, maxPart)
	}
}
