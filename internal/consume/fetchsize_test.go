package consume

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFetchSizerFollowsTheCompressionRatio: fetch limits count compressed
// bytes, so they shrink as soon as batches decompress to more, keeping one
// fetch at MAX_BUFFERED_BYTES/8 decompressed, and grow back slowly.
func TestFetchSizerFollowsTheCompressionRatio(t *testing.T) {
	s := newFetchSizer(64 << 20) // 8 MiB decompressed per fetch
	var gotMax, gotPart int32
	s.update = func(m, p int32) { gotMax, gotPart = m, p }
	s.set, _ = s.limits()
	if s.set != 8<<20 {
		t.Fatalf("uncompressed limit: got %d, want %d", s.set, 8<<20)
	}
	batch := func(ratio int) kgo.FetchBatchMetrics {
		return kgo.FetchBatchMetrics{NumRecords: 100, CompressedBytes: 10000, UncompressedBytes: 10000 * ratio}
	}
	s.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, batch(16))
	if want := int32(8 << 20 / 16); gotMax != want || gotPart != want {
		t.Fatalf("after a batch of ratio 16: got limits %d/%d, want %d/%d", gotMax, gotPart, want, want)
	}
	s.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, batch(1))
	if gotMax != 8<<20/16 {
		t.Fatalf("one uncompressed batch moved the limit at once to %d", gotMax)
	}
	for range 500 {
		s.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, batch(1))
	}
	if gotMax < 6<<20 || gotPart != 1<<20 {
		t.Fatalf("after many uncompressed batches: got limits %d/%d, want back near %d/%d", gotMax, gotPart, 8<<20, 1<<20)
	}
	s.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, batch(1000))
	if gotMax != minFetch {
		t.Fatalf("at ratio 1000: got %d, want the floor %d", gotMax, minFetch)
	}
}
