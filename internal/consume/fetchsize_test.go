package consume

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func batchOf(ratio int) kgo.FetchBatchMetrics {
	return kgo.FetchBatchMetrics{NumRecords: 100, CompressedBytes: 10000, UncompressedBytes: 10000 * ratio}
}

// TestFetchSizerFollowsTheCompressionRatio: fetch limits count compressed
// bytes, so they shrink as soon as batches decompress to more, keeping one
// fetch at MAX_BUFFERED_BYTES/8 decompressed, and grow back slowly.
func TestFetchSizerFollowsTheCompressionRatio(t *testing.T) {
	s := newFetchSizer(64 << 20) // 8 MiB decompressed per fetch
	var gotMax, gotPart int32
	s.update = func(m, p int32) { gotMax, gotPart = m, p }
	s.set, s.setP = s.limits()
	s.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, batchOf(1))
	if gotMax != 8<<20 || gotPart != 1<<20 {
		t.Fatalf("uncompressed limits: got %d/%d, want %d/%d", gotMax, gotPart, 8<<20, 1<<20)
	}
	s.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, batchOf(16))
	if want := int32(8 << 20 / 16); gotMax != want || gotPart != want {
		t.Fatalf("after a batch of ratio 16: got limits %d/%d, want %d/%d", gotMax, gotPart, want, want)
	}
	s.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, batchOf(1))
	if gotMax != 8<<20/16 {
		t.Fatalf("one uncompressed batch moved the limit at once to %d", gotMax)
	}
	for range 500 {
		s.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, batchOf(1))
	}
	if gotMax < 6<<20 || gotPart != 1<<20 {
		t.Fatalf("after many uncompressed batches: got limits %d/%d, want back near %d/%d", gotMax, gotPart, 8<<20, 1<<20)
	}
	s.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, batchOf(1000))
	if want := int32(32 << 20 / 1000); gotMax != minFetch || gotPart != want {
		t.Fatalf("at ratio 1000: got %d/%d, want the floor %d and %d", gotMax, gotPart, minFetch, want)
	}
	s.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, batchOf(5000))
	if gotMax != minFetch || gotPart != minPartitionFetch {
		t.Fatalf("at ratio 5000: got %d/%d, want the floors %d/%d", gotMax, gotPart, minFetch, minPartitionFetch)
	}
}

// TestFetchSizerFirstFetchIsSmall: before any batch was read the ratio is
// unknown, and a first fetch sized for ratio 1 would bring the whole
// fetch budget times the ratio (at zstd's 50, 50 × MAX_BUFFERED_BYTES/8).
func TestFetchSizerFirstFetchIsSmall(t *testing.T) {
	s := newFetchSizer(64 << 20)
	if m, p := s.limits(); m != minFetch || p != minFetch {
		t.Fatalf("first limits %d/%d, want %d/%d", m, p, minFetch, minFetch)
	}
	var gotMax int32
	s.update = func(m, _ int32) { gotMax = m }
	s.set, s.setP = s.limits()
	s.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, batchOf(50))
	if want := int32(8 << 20 / 50); gotMax != want {
		t.Fatalf("after a first batch of ratio 50: got %d, want %d at once", gotMax, want)
	}
}

// TestFetchSizerPartitionLimitFollowsTheAssignment: each partition can
// pass its share by one fetch's worth of its own records, so the partition
// limit keeps all of them together to half of MAX_BUFFERED_BYTES.
func TestFetchSizerPartitionLimitFollowsTheAssignment(t *testing.T) {
	s := newFetchSizer(64 << 20)
	var gotPart int32
	s.update = func(_, p int32) { gotPart = p }
	s.set, s.setP = s.limits()
	s.OnFetchBatchRead(kgo.BrokerMetadata{}, "t", 0, batchOf(4))
	if gotPart != 1<<20 {
		t.Fatalf("one partition at ratio 4: got %d, want %d", gotPart, 1<<20)
	}
	s.setPartitions(64)
	if want := int32(32 << 20 / 64 / 4); gotPart != want {
		t.Fatalf("64 partitions at ratio 4: got %d, want %d", gotPart, want)
	}
	s.setPartitions(0)
	if gotPart != 1<<20 {
		t.Fatalf("no partitions: got %d, want %d", gotPart, 1<<20)
	}
}
