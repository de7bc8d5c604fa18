package consume

import (
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCompressionCodecs: records produced with each codec Kafka producers
// use are delivered whole and in order, and committed to the end, with the
// fetch sizes following each codec's ratio.
func TestCompressionCodecs(t *testing.T) {
	for _, tt := range []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t, 3)
			cl := newClient(t, c, kgo.ProducerBatchCompression(tt.codec))
			pad := make([]byte, 800)
			for i := range pad {
				pad[i] = 'a' + byte(i%3)
			}
			p := produce(t, c, cl, 1500, func(i int) []byte {
				return []byte(`{"n":` + strconv.Itoa(i) + `,"pad":"` + string(pad) + `"}`)
			})
			var log sharedLog
			m := start(t, c.config(t, map[string]string{"MAX_BUFFERED_BYTES": "4194304", "BATCH_MAX_BYTES": "262144"}), log.recorder("a"))
			waitFor(t, 30*time.Second, "1500 deliveries", func() bool { return len(log.snapshot()) >= 1500 })
			checkCommittedAtEnd(t, c, cl, p)
			if err := m.stop(t); err != nil {
				t.Fatalf("Run: %v", err)
			}
			deliveries := log.snapshot()
			checkAllDelivered(t, p, deliveries, nil)
			if _, dups := firstDeliveries(deliveries); dups != 0 {
				t.Fatalf("got %d duplicate deliveries, want 0", dups)
			}
		})
	}
}
