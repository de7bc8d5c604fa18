package consume

import (
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestShareFetchAcquiresAtMostWhatTheMemberWorksOn: every ShareFetch that
// acquires records asks for at most MAX_IN_FLIGHT_BATCHES ×
// BATCH_MAX_RECORDS in KIP-1206's record-limit mode (ShareAcquireMode 1).
// In the default batch-optimized mode the limit is soft: a broker acquires
// whole producer batches, so one poll can take thousands of records that
// the member then holds, one batch at a time, while the other members
// find nothing to acquire.
func TestShareFetchAcquiresAtMostWhatTheMemberWorksOn(t *testing.T) {
	c := startShareCluster(t, 3, 5)
	if c.kf == nil {
		t.Skip("reads the share fetch requests through kfake's request control")
	}
	cl := newClient(t, c, kgo.DefaultProduceTopic(c.topic))
	want := produce(t, c, cl, 300, nil)
	type seen struct {
		version    int16
		mode       int8
		maxRecords int32
	}
	var (
		mu   sync.Mutex
		reqs []seen
	)
	c.kf.ControlKey(int16(kmsg.ShareFetch), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.kf.KeepControl()
		req := r.(*kmsg.ShareFetchRequest)
		if !req.IsRenewAck && req.ShareSessionEpoch != -1 {
			mu.Lock()
			reqs = append(reqs, seen{req.Version, req.ShareAcquireMode, req.MaxRecords})
			mu.Unlock()
		}
		return nil, nil, false
	})
	var log sharedLog
	m := start(t, shareConfig(t, c, map[string]string{"BATCH_MAX_RECORDS": "20", "MAX_IN_FLIGHT_BATCHES": "2"}), log.recorder("a"))
	waitShareDone(t, c, cl, want, 30*time.Second)
	if err := m.stop(t); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) == 0 {
		t.Fatal("saw no share fetch")
	}
	for _, s := range reqs {
		if s.version < 2 {
			t.Fatalf("share fetch v%d: want v2+ (ShareAcquireMode)", s.version)
		}
		if s.mode != 1 || s.maxRecords != 40 {
			t.Fatalf("share fetch asked for %d records in acquire mode %d; want 40 (MAX_IN_FLIGHT_BATCHES × BATCH_MAX_RECORDS) in record-limit mode (1)", s.maxRecords, s.mode)
		}
	}
}
