package idempotency

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestKeys(t *testing.T) {
	long := strings.Repeat("x", MaxHeaderKeyBytes+1)
	tests := []struct {
		name string
		keys Keys
		rec  *kgo.Record
		want string
	}{
		{name: "offset", keys: Keys{Prefix: "brands-sync-prod"},
			rec: &kgo.Record{Topic: "products", Partition: 3, Offset: 42}, want: "brands-sync-prod:products:3:42"},
		{name: "offset ignores headers", keys: Keys{Prefix: "g"},
			rec:  &kgo.Record{Topic: "t", Partition: 0, Offset: 0, Headers: []kgo.RecordHeader{{Key: "id", Value: []byte("x")}}},
			want: "g:t:0:0"},
		{name: "header", keys: Keys{Prefix: "g", Header: "message-id"},
			rec:  &kgo.Record{Topic: "orders", Offset: 7, Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t")}, {Key: "message-id", Value: []byte("m-1")}}},
			want: "g:orders:h:m-1"},
		{name: "header repeated: the last counts", keys: Keys{Prefix: "g", Header: "id"},
			rec:  &kgo.Record{Topic: "t", Headers: []kgo.RecordHeader{{Key: "id", Value: []byte("a")}, {Key: "id", Value: []byte("b")}}},
			want: "g:t:h:b"},
		{name: "header names are case-sensitive", keys: Keys{Prefix: "g", Header: "id"},
			rec: &kgo.Record{Topic: "t", Headers: []kgo.RecordHeader{{Key: "ID", Value: []byte("a")}}}, want: ""},
		{name: "header missing", keys: Keys{Prefix: "g", Header: "id"},
			rec: &kgo.Record{Topic: "t"}, want: ""},
		{name: "header empty", keys: Keys{Prefix: "g", Header: "id"},
			rec: &kgo.Record{Topic: "t", Headers: []kgo.RecordHeader{{Key: "id"}}}, want: ""},
		{name: "header not UTF-8 is hashed", keys: Keys{Prefix: "g", Header: "id"},
			rec:  &kgo.Record{Topic: "t", Headers: []kgo.RecordHeader{{Key: "id", Value: []byte{0xff, 0xfe}}}},
			want: "g:t:h:sha256:"},
		{name: "header too long is hashed", keys: Keys{Prefix: "g", Header: "id"},
			rec:  &kgo.Record{Topic: "t", Headers: []kgo.RecordHeader{{Key: "id", Value: []byte(long)}}},
			want: "g:t:h:sha256:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.keys.Key(tt.rec)
			if strings.HasSuffix(tt.want, "sha256:") {
				if !strings.HasPrefix(got, tt.want) || len(got) != len(tt.want)+64 {
					t.Errorf("got %q, want %q and 64 hex digits", got, tt.want)
				}
				return
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKeysDistinct(t *testing.T) {
	k := Keys{Prefix: "g"}
	seen := map[string]bool{}
	for _, r := range []*kgo.Record{
		{Topic: "t", Partition: 1, Offset: 23}, {Topic: "t", Partition: 12, Offset: 3},
		{Topic: "t1", Partition: 2, Offset: 3}, {Topic: "t", Partition: 12, Offset: 3 + 1},
	} {
		key := k.Key(r)
		if seen[key] {
			t.Errorf("got %q twice, want distinct keys", key)
		}
		seen[key] = true
	}
}

func TestClaimVerdicts(t *testing.T) {
	clock := newFakeClock()
	mem := NewMemory(clock.Now)
	reg := prometheus.NewRegistry()
	m := Metrics{
		Seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "s"}, []string{"op"}),
		Errors:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "e"}, []string{"op"}),
	}
	reg.MustRegister(m.Seconds, m.Errors)
	g := New("memory", mem, Config{Prefix: "g", Header: "id", TTL: time.Hour, InProgressTTL: time.Minute}, m)
	other := New("memory", mem, Config{Prefix: "g", Header: "id", TTL: time.Hour, InProgressTTL: time.Minute}, Metrics{})
	ctx := context.Background()

	rec := func(id string) *kgo.Record {
		r := &kgo.Record{Topic: "t"}
		if id != "" {
			r.Headers = []kgo.RecordHeader{{Key: "id", Value: []byte(id)}}
		}
		return r
	}
	keysOf := func(recs ...*kgo.Record) []string {
		var ks []string
		for _, r := range recs {
			ks = append(ks, g.Key(r))
		}
		return ks
	}
	// Another member holds "busy"; "done" was completed before.
	if err := other.Claim(ctx, keysOf(rec("busy")), nil, other.Owner(), make([]Verdict, 1)); err != nil {
		t.Fatal(err)
	}
	if err := g.Complete(ctx, keysOf(rec("done"))); err != nil {
		t.Fatal(err)
	}
	keys := keysOf(rec("a"), rec(""), rec("done"), rec("a"), rec("busy"), rec("b"))
	v := make([]Verdict, len(keys))
	owner := g.Owner()
	if err := g.Claim(ctx, keys, nil, owner, v); err != nil {
		t.Fatal(err)
	}
	want := []Verdict{Handle, Unkeyed, Duplicate, Duplicate, Busy, Handle}
	if !slices.Equal(v, want) {
		t.Errorf("got %v, want %v", v, want)
	}
	if n := mem.Calls(OpBegin); n != 2 {
		t.Errorf("got %d Begin calls, want 2: one per batch", n)
	}
	// A retried Claim of the same batch finds its own claims.
	if err := g.Claim(ctx, keys, nil, owner, v); err != nil || !slices.Equal(v, want) {
		t.Errorf("retried: got %v %v, want %v", v, err, want)
	}
	// Another batch of this process does not.
	if err := g.Claim(ctx, keys[:1], nil, g.Owner(), v[:1]); err != nil || v[0] != Busy {
		t.Errorf("another batch: got %v %v, want busy", v[0], err)
	}

	// An outage is an error, counted by operation.
	mem.Fail(errors.New("connection refused"))
	if err := g.Claim(ctx, keys, nil, owner, v); err == nil || !strings.Contains(err.Error(), "memory store begin: connection refused") {
		t.Errorf("got %v, want the store's error, named", err)
	}
	if err := g.Complete(ctx, keys[:1]); err == nil {
		t.Error("Complete: got nil, want an error")
	}
	if got := testutil.ToFloat64(m.Errors.WithLabelValues(OpBegin)); got != 1 {
		t.Errorf("got %v begin errors, want 1", got)
	}
	if got := testutil.ToFloat64(m.Errors.WithLabelValues(OpComplete)); got != 1 {
		t.Errorf("got %v complete errors, want 1", got)
	}
	if got := testutil.CollectAndCount(m.Seconds); got != 2 {
		t.Errorf("got %d latency series, want 2 (begin, complete)", got)
	}
}

// TestClaimTimeout checks that a store that does not answer is an error
// after CallTimeout, not a wait without end.
func TestClaimTimeout(t *testing.T) {
	g := New("stuck", &hangingStore{}, Config{Prefix: "g", CallTimeout: 50 * time.Millisecond}, Metrics{})
	err := g.Claim(context.Background(), []string{"k"}, nil, g.Owner(), make([]Verdict, 1))
	if err == nil || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Errorf("got %v, want a timeout error", err)
	}
}

type hangingStore struct{ *Memory }

func (*hangingStore) Begin(ctx context.Context, _, _ []string, _ string, _ time.Duration) ([]State, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
