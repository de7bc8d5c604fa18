package consume

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/codec"
	"github.com/msk-consumer/msk-consumer/internal/health"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
	"github.com/msk-consumer/msk-consumer/internal/status"
)

// hangOn is a handler that never returns for one partition (until the
// test ends) and handles the others.
type hangOn struct {
	part    int32
	release chan struct{}
}

func (h hangOn) Handle(ctx context.Context, b handler.Batch) error {
	if b.Partition == h.part {
		select {
		case <-h.release:
		case <-ctx.Done():
		}
		return ctx.Err()
	}
	return nil
}

// startWithLetters is start with the status page's dead-letter record.
func startWithLetters(t *testing.T, cfg config.Config, h handler.Handler, letters *status.Letters) *member {
	t.Helper()
	key, value, err := codec.NewKeyValue(context.Background(), cfg, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	hl := health.New(cfg.Ops.UnreadyAfter, time.Minute, time.Now)
	c, err := New(cfg, Deps{Key: key, Value: value, Handler: h, Logger: zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)),
		Metrics: m, Health: hl, Letters: letters})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mb := &member{c: c, health: hl, metrics: m, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { mb.done <- c.Run(ctx) }()
	t.Cleanup(func() { mb.stop(t) })
	return mb
}

// TestSnapshotShowsTheStuckLaneAndDeadLetters: partition 0's handler
// hangs; partition 1 flows and dead-letters its undecodable records. The
// snapshot has the group, both partitions' offsets and lag, partition 0's
// batch in flight with its attempt, and the dead letters without their keys
// or values.
func TestSnapshotShowsTheStuckLaneAndDeadLetters(t *testing.T) {
	c := startCluster(t, 2)
	h := hangOn{part: 0, release: make(chan struct{})}
	defer close(h.release)
	letters := &status.Letters{}
	m := startWithLetters(t, c.config(t, map[string]string{"BATCH_MAX_RECORDS": "10"}), h, letters)
	old := time.Now().Add(-time.Hour)
	var recs []*kgo.Record
	for i := range 40 {
		v := []byte(`{"n":1}`)
		if i%10 == 3 {
			v = []byte("secret-value-not-json")
		}
		recs = append(recs, &kgo.Record{Topic: c.topic, Partition: int32(i % 2), Key: []byte("secret-key"), Value: v, Timestamp: old,
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("secret-header")}}})
	}
	pcl := newClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := pcl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var snap status.Consumer
	var p0, p1 status.Partition
	waitFor(t, 20*time.Second, "partition 0's batch with the handler and partition 1 done", func() bool {
		snap = m.c.Snapshot(time.Now())
		if len(snap.Partitions) != 2 {
			return false
		}
		for _, p := range snap.Partitions {
			if p.Partition == 0 {
				p0 = p
			} else {
				p1 = p
			}
		}
		return len(p0.Lanes) == 1 && p0.Lanes[0].Batch != nil && p0.Lanes[0].Batch.Attempt == 1 &&
			p1.Next == 20 && p1.Committed == 20 && len(letters.List()) == 4
	})
	if g := snap.Group; g.Type != "consumer" || g.ID != c.group || g.Member == "" || g.Generation < 1 || g.Protocol != string(m.c.cfg.Kafka.GroupProtocol) {
		t.Errorf("group: got %+v", g)
	}
	b := p0.Lanes[0].Batch
	if p0.Lanes[0].Name != "orders/0" && !strings.HasSuffix(p0.Lanes[0].Name, "/0") {
		t.Errorf("lane name %q, want the partition's key", p0.Lanes[0].Name)
	}
	if b.FirstOffset != 0 || b.LastOffset != 9 || b.Records != 10 || b.AgeSeconds <= 0 || b.CallSeconds <= 0 {
		t.Errorf("partition 0's batch: got %+v, want offsets 0 to 9 with the handler", b)
	}
	if p0.Next != 0 || p0.End != 20 || p0.LagRecords != 20 || p0.Committed != -1 {
		t.Errorf("partition 0: got next %d end %d lag %d committed %d, want 0 20 20 -1", p0.Next, p0.End, p0.LagRecords, p0.Committed)
	}
	if p0.LagSeconds == nil || *p0.LagSeconds < 3599 {
		t.Errorf("partition 0's lag in time: got %v, want the age of offset 0 (an hour)", p0.LagSeconds)
	}
	if p1.LagRecords != 0 || p1.LagSeconds == nil || *p1.LagSeconds != 0 || p1.Lanes[0].Batch != nil {
		t.Errorf("partition 1: got %+v, want no lag and no batch in flight", p1)
	}
	checkStatusMetrics(t, m, c.topic)
	dls := letters.List()
	// Records 3, 13, 23 and 33; batches' copies are acknowledged in any order.
	slices.SortFunc(dls, func(a, b status.DeadLetter) int { return cmp.Compare(a.Offset, b.Offset) })
	for i, want := range []int64{1, 6, 11, 16} {
		d := dls[i]
		if d.Topic != c.topic || d.Partition != 1 || d.Offset != want || d.Kind != "decode" || d.Message == "" || d.Time.IsZero() {
			t.Errorf("dead letter %d: got %+v, want partition 1 offset %d, decode", i, d, want)
		}
		if strings.Contains(d.Message, "secret") {
			t.Errorf("dead letter %d's message shows the record: %q", i, d.Message)
		}
	}
}

// The same data feeds consumer_lag_seconds and consumer_dead_letters_total.
func checkStatusMetrics(t *testing.T, m *member, topic string) {
	t.Helper()
	if got := testutil.ToFloat64(m.metrics.DeadLetters.WithLabelValues(topic, "decode")); got != 4 {
		t.Errorf("consumer_dead_letters_total{kind=decode}: got %v, want 4", got)
	}
	if got := testutil.ToFloat64(m.metrics.DeadLetters.WithLabelValues(topic, "handler")); got != 0 {
		t.Errorf("consumer_dead_letters_total{kind=handler}: got %v, want 0", got)
	}
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	lag := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "consumer_lag_seconds" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			var part string
			for _, l := range mt.GetLabel() {
				if l.GetName() == "partition" {
					part = l.GetValue()
				}
			}
			lag[part] = mt.GetGauge().GetValue()
		}
	}
	if len(lag) != 2 || lag["0"] < 3599 || lag["1"] != 0 {
		t.Errorf("consumer_lag_seconds: got %v, want partition 0 an hour behind and 1 at 0", lag)
	}
}

func TestLagSecondsOfThePartition(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name      string
		recs      []*kgo.Record // fetched, none finished
		next, hwm int64
		want      float64
		known     bool
	}{
		{name: "nothing fetched yet", next: -1, hwm: 0, known: false},
		{name: "nothing fetched, records past", next: -1, hwm: 5, known: false},
		{name: "all finished", next: 5, hwm: 5, want: 0, known: true},
		{name: "next record a minute old", recs: []*kgo.Record{{Offset: 5, Timestamp: now.Add(-time.Minute)}, {Offset: 6, Timestamp: now}}, next: 5, hwm: 7, want: 60, known: true},
		{name: "next record from the future", recs: []*kgo.Record{{Offset: 5, Timestamp: now.Add(time.Minute)}}, next: 5, hwm: 6, want: 0, known: true},
		{name: "next record without a timestamp", recs: []*kgo.Record{{Offset: 5}}, next: 5, hwm: 6, known: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &offsets{next: tt.next, base: -1}
			p := &partition{offs: o, fin: o, hwm: tt.hwm}
			for _, r := range tt.recs {
				o.track.push(r)
			}
			got, known := p.lagSecondsLocked(now)
			if known != tt.known || (known && got != tt.want) {
				t.Errorf("got %v %v, want %v %v", got, known, tt.want, tt.known)
			}
		})
	}
}
