package dlq

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// broker is a kfake cluster with the dead-letter topic t.dlq, whose
// max.message.bytes is limit, and a client producing to it as the service
// does: acks=all, its batch limit the topic's.
type broker struct {
	kf    *kfake.Cluster
	cl    *kgo.Client
	adm   *kadm.Client
	limit atomic.Int32
}

func newBroker(t *testing.T, limit int32) *broker {
	t.Helper()
	kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kf.Close)
	b := &broker{kf: kf}
	b.limit.Store(limit)
	b.cl = b.client(t)
	b.adm = kadm.NewClient(b.cl)
	b.setLimit(t, limit)
	return b
}

// client returns a new producing client: the client reads its batch limit
// when it first produces to a partition.
func (b *broker) client(t *testing.T) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.kf.ListenAddrs()...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytesFn(func(string) int32 { return b.limit.Load() }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// incompressible returns n bytes that the producer's compression cannot
// shrink, so that the broker sees their size.
func incompressible(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(r.Uint32())
	}
	return out
}

// noise returns n bytes from a generator seeded with seed: values that
// compress neither alone nor together.
func noise(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(r.Uint32())
	}
	return out
}

// setLimit sets t.dlq's max.message.bytes and the producer's batch limit.
func (b *broker) setLimit(t *testing.T, limit int32) {
	t.Helper()
	v := strconv.Itoa(int(limit))
	rs, err := b.adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: &v}}, "t.dlq")
	if err == nil {
		_, err = rs.On("t.dlq", nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	b.limit.Store(limit)
}

// errorsSeen keeps the errors OnError reports.
type errorsSeen struct {
	mu   sync.Mutex
	errs []error
}

func (e *errorsSeen) add(_ *kgo.Record, err error) {
	e.mu.Lock()
	e.errs = append(e.errs, err)
	e.mu.Unlock()
}
func (e *errorsSeen) last() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.errs) == 0 {
		return nil
	}
	return e.errs[len(e.errs)-1]
}

func writeWithin(t *testing.T, w *Writer, d time.Duration, fs ...Failure) error {
	t.Helper()
	return writeReporting(t, w, d, nil, fs...)
}

func writeReporting(t *testing.T, w *Writer, d time.Duration, onError OnError, fs ...Failure) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return w.Write(ctx, fs, onError)
}

// TestCopyWhoseHeadersExceedTheLimitOmitsThem: a source record whose
// headers alone exceed the dead-letter topic's max.message.bytes (its
// source topic takes larger records) cannot be written without its value
// either. It is written without the original headers, keeping its value
// and every dlq.* header, with dlq.headers.omitted holding how many were
// left out, whether the writer knew the limit or the broker refused it.
func TestCopyWhoseHeadersExceedTheLimitOmitsThem(t *testing.T) {
	for _, known := range []int32{0, 4000} {
		t.Run("limit known "+strconv.Itoa(int(known)), func(t *testing.T) {
			b := newBroker(t, 4000)
			cfg := testConfig()
			cfg.MaxBytes = func(string) int32 { return known }
			var omitted []string
			w := NewWriter(cfg, Deps{Producer: b.cl,
				OnOmitted: func(_ *kgo.Record, _ string, _ int32, value, headers bool) {
					if value {
						omitted = append(omitted, "value")
					}
					if headers {
						omitted = append(omitted, "headers")
					}
				},
			})
			src := &kgo.Record{Topic: "t", Offset: 7, Key: []byte("k"), Value: []byte(strings.Repeat("v", 1000)),
				Headers: []kgo.RecordHeader{{Key: "blob", Value: make([]byte, 5000)}, {Key: "trace-id", Value: []byte("x")}}}
			if err := writeWithin(t, w, 10*time.Second, Failure{Record: src, Kind: KindHandler, Err: errors.New("boom"), Attempts: 3}); err != nil {
				t.Fatalf("Write: %v", err)
			}
			got := readDLQ(t, b, 1)[0]
			if string(got.Value) != string(src.Value) || string(got.Key) != "k" ||
				headerOf(got, "blob") != nil || headerOf(got, "trace-id") != nil ||
				string(headerOf(got, HeaderHeadersOmitted)) != "2" || headerOf(got, HeaderValueOmitted) != nil ||
				string(headerOf(got, HeaderOffset)) != "7" || string(headerOf(got, HeaderMessage)) != "boom" || string(headerOf(got, HeaderAttempts)) != "3" {
				t.Fatalf("copy: value %d bytes, headers %v", len(got.Value), headerKeys(got))
			}
			if strings.Join(omitted, ",") != "headers" {
				t.Fatalf("reported omitted: got %v, want [headers]", omitted)
			}
		})
	}
}

// TestCopyRefusedAsRecordListTooLarge: a broker that refuses the copy with
// RECORD_LIST_TOO_LARGE (a record batch above the topic's segment.bytes),
// which max.message.bytes does not explain, gets the copy without its
// value, then without its headers, rather than the same copy forever.
func TestCopyRefusedAsRecordListTooLarge(t *testing.T) {
	b := newBroker(t, 1<<20)
	b.kf.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "t.dlq", Err: kerr.RecordListTooLarge, Count: -1,
		When: func(r kmsg.Request) bool {
			for _, rt := range r.(*kmsg.ProduceRequest).Topics {
				for _, rp := range rt.Partitions {
					if len(rp.Records) > 3000 {
						return true
					}
				}
			}
			return false
		}})
	w := NewWriter(testConfig(), Deps{Producer: b.cl})
	src := &kgo.Record{Topic: "t", Offset: 8, Key: []byte("k"), Value: incompressible(10000)}
	if err := writeWithin(t, w, 10*time.Second, Failure{Record: src, Kind: KindDecode, Err: errors.New("bad")}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	got := readDLQ(t, b, 1)[0]
	if got.Value != nil || string(headerOf(got, HeaderValueOmitted)) != "10000" || string(headerOf(got, HeaderKind)) != "decode" {
		t.Fatalf("copy: value %d bytes, headers %v", len(got.Value), headerKeys(got))
	}
}

// TestCopiesRefusedTogetherTriedAlone: copies that fit one by one but were
// sent in one record batch that the broker refuses as too large
// (RECORD_LIST_TOO_LARGE here: the batch is above segment.bytes) are each
// sent alone before anything is left out of them: the refusal was of the
// batch, not of any one copy.
func TestCopiesRefusedTogetherTriedAlone(t *testing.T) {
	b := newBroker(t, 1<<20)
	f := b.kf.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "t.dlq", Err: kerr.RecordListTooLarge, Count: -1,
		When: func(r kmsg.Request) bool {
			for _, rt := range r.(*kmsg.ProduceRequest).Topics {
				for _, rp := range rt.Partitions {
					if len(rp.Records) > 10000 {
						return true
					}
				}
			}
			return false
		}})
	var omitted atomic.Int32
	// A linger puts the copies in one record batch, as a busy producer
	// does.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.kf.ListenAddrs()...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	w := NewWriter(testConfig(), Deps{Producer: cl, OnOmitted: func(_ *kgo.Record, _ string, _ int32, value, _ bool) {
		if value {
			omitted.Add(1)
		}
	}})
	var fs []Failure
	for i := range 3 {
		fs = append(fs, Failure{Record: &kgo.Record{Topic: "t", Offset: int64(20 + i), Key: []byte("k"), Value: noise(uint64(i), 6000)}, Kind: KindHandler, Err: errors.New("no")})
	}
	if err := writeWithin(t, w, 10*time.Second, fs...); err != nil {
		t.Fatalf("Write: %v", err)
	}
	for _, got := range readDLQ(t, b, 3) {
		if len(got.Value) != 6000 || headerOf(got, HeaderValueOmitted) != nil {
			t.Errorf("copy of offset %s: value %d bytes, headers %v; want it whole", headerOf(got, HeaderOffset), len(got.Value), headerKeys(got))
		}
	}
	if n := omitted.Load(); n != 0 {
		t.Errorf("got %d copies reported without their value, want none", n)
	}
	if f.Hits() == 0 {
		t.Error("no record batch was refused: the test did not send the copies together")
	}
}

// TestCopyTooLargeEvenWithoutValueAndHeaders: a key that alone exceeds the
// dead-letter topic's max.message.bytes cannot be written in any form: the
// writer retries (the topic's limit can be raised), and the error it
// reports, which /readyz shows, says why. Once the topic takes it, the
// whole copy is written.
func TestCopyTooLargeEvenWithoutValueAndHeaders(t *testing.T) {
	b := newBroker(t, 2000)
	seen := &errorsSeen{}
	w := NewWriter(testConfig(), Deps{Producer: b.cl})
	src := &kgo.Record{Topic: "t", Offset: 9, Key: make([]byte, 3000), Value: []byte("v"),
		Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}}
	f := Failure{Record: src, Kind: KindDecode, Err: errors.New("bad")}
	if err := writeReporting(t, w, 3*time.Second, seen.add, f); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write: got %v, want it to retry until the deadline", err)
	}
	err := seen.last()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("reported error: got %v, want MESSAGE_TOO_LARGE", err)
	}
	for _, want := range []string{"t.dlq", "t/0@9", "even without its value and headers", "max.message.bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("reported error %q does not name %q", err, want)
		}
	}
	b.setLimit(t, 1<<20) // the topic fixed
	w = NewWriter(testConfig(), Deps{Producer: b.client(t)})
	if err := writeReporting(t, w, 10*time.Second, seen.add, f); err != nil {
		t.Fatalf("Write after the fix: %v", err)
	}
	got := readDLQ(t, b, 1)[0]
	if len(got.Key) != 3000 || string(got.Value) != "v" || string(headerOf(got, "h")) != "x" {
		t.Fatalf("copy after the fix: key %d bytes, value %q, headers %v", len(got.Key), got.Value, headerKeys(got))
	}
}

func readDLQ(t *testing.T, b *broker, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.kf.ListenAddrs()...), kgo.ConsumeTopics("t.dlq"), kgo.FetchMaxBytes(8<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d dead letters, want %d", len(out), n)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func headerKeys(r *kgo.Record) []string {
	var ks []string
	for _, h := range r.Headers {
		ks = append(ks, h.Key)
	}
	return ks
}
