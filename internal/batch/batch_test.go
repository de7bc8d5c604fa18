package batch

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestTakeBounds(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name   string
		limits Limits
		sizes  []int
		want   [][]int // the items (their indexes) of each successive Take
	}{
		{"by count", Limits{MaxRecords: 2, MaxBytes: 100, MaxWait: time.Second}, []int{1, 1, 1, 1, 1}, [][]int{{0, 1}, {2, 3}, {4}}},
		{"by bytes", Limits{MaxRecords: 10, MaxBytes: 10, MaxWait: time.Second}, []int{4, 4, 4, 4}, [][]int{{0, 1}, {2, 3}}},
		{"bytes exactly", Limits{MaxRecords: 10, MaxBytes: 8, MaxWait: time.Second}, []int{4, 4, 4}, [][]int{{0, 1}, {2}}},
		{"oversized item alone", Limits{MaxRecords: 10, MaxBytes: 5, MaxWait: time.Second}, []int{2, 50, 2}, [][]int{{0}, {1}, {2}}},
		{"zero limits raised to one", Limits{}, []int{3, 3}, [][]int{{0}, {1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New[int](tt.limits)
			total := 0
			for i, s := range tt.sizes {
				b.Add(i, s, t0)
				total += s
			}
			if b.Bytes() != total {
				t.Fatalf("Bytes: got %d, want %d", b.Bytes(), total)
			}
			for i, want := range tt.want {
				got, size := b.Take(nil)
				if !equal(got, want) {
					t.Fatalf("take %d: got %v, want %v", i, got, want)
				}
				wantSize := 0
				for _, j := range want {
					wantSize += tt.sizes[j]
				}
				if size != wantSize {
					t.Fatalf("take %d size: got %d, want %d", i, size, wantSize)
				}
				total -= size
				if b.Bytes() != total {
					t.Fatalf("take %d Bytes: got %d, want %d", i, b.Bytes(), total)
				}
			}
			if b.Len() != 0 {
				t.Fatalf("Len after all takes: got %d, want 0", b.Len())
			}
		})
	}
}

func TestReady(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := Limits{MaxRecords: 3, MaxBytes: 100, MaxWait: time.Second}
	b := New[int](l)
	if b.Ready(t0) {
		t.Fatal("empty batcher is ready")
	}
	if _, ok := b.Deadline(); ok {
		t.Fatal("empty batcher has a deadline")
	}
	b.Add(1, 10, t0)
	b.Add(2, 10, t0.Add(500*time.Millisecond))
	if b.Ready(t0.Add(999 * time.Millisecond)) {
		t.Fatal("ready before the oldest waited MaxWait")
	}
	if d, _ := b.Deadline(); !d.Equal(t0.Add(time.Second)) {
		t.Fatalf("Deadline: got %v, want %v", d, t0.Add(time.Second))
	}
	if !b.Ready(t0.Add(time.Second)) {
		t.Fatal("not ready once the oldest waited MaxWait")
	}
	b.Take(nil)
	b.Add(3, 10, t0.Add(2*time.Second))
	b.Add(4, 10, t0.Add(2*time.Second))
	if b.Ready(t0.Add(2 * time.Second)) {
		t.Fatal("ready with 2 of 3 records and no age")
	}
	b.Add(5, 10, t0.Add(2*time.Second))
	if !b.Ready(t0.Add(2 * time.Second)) {
		t.Fatal("not ready with MaxRecords queued")
	}
	big := New[int](Limits{MaxRecords: 100, MaxBytes: 25, MaxWait: time.Hour})
	big.Add(1, 20, t0)
	if big.Ready(t0) {
		t.Fatal("ready below MaxBytes")
	}
	big.Add(2, 5, t0)
	if !big.Ready(t0) {
		t.Fatal("not ready at MaxBytes")
	}
}

// TestDeadlineAfterTake checks the age of a batch counts from its own oldest
// record, not from the previous batch's.
func TestDeadlineAfterTake(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := New[int](Limits{MaxRecords: 1, MaxBytes: 100, MaxWait: time.Second})
	b.Add(1, 1, t0)
	b.Add(2, 1, t0.Add(300*time.Millisecond))
	b.Take(nil)
	if d, _ := b.Deadline(); !d.Equal(t0.Add(1300 * time.Millisecond)) {
		t.Fatalf("got %v, want %v", d, t0.Add(1300*time.Millisecond))
	}
}

func TestDrainAndReuse(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := New[int](Limits{MaxRecords: 2, MaxBytes: 100, MaxWait: time.Second})
	for i := range 5 {
		b.Add(i, 2, t0)
	}
	b.Take(nil)
	if got := b.Drain(); got != 6 {
		t.Fatalf("Drain: got %d, want 6", got)
	}
	if b.Len() != 0 || b.Bytes() != 0 {
		t.Fatalf("after Drain: Len %d Bytes %d, want 0 0", b.Len(), b.Bytes())
	}
	// Taking everything and adding again reuses the array from the start.
	b.Add(7, 1, t0)
	b.Take(nil)
	b.Add(8, 1, t0)
	if got, _ := b.Take(nil); !equal(got, []int{8}) {
		t.Fatalf("got %v, want [8]", got)
	}
}

// TestFlushByTime drives a batcher the way a worker does, with a timer on
// Deadline, under synctest's fake clock: an idle partition's lone record is
// handed over after exactly MaxWait.
func TestFlushByTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New[int](Limits{MaxRecords: 500, MaxBytes: 1 << 20, MaxWait: 3 * time.Second})
		start := time.Now()
		b.Add(42, 10, start)
		d, ok := b.Deadline()
		if !ok {
			t.Fatal("no deadline")
		}
		timer := time.NewTimer(time.Until(d))
		<-timer.C
		if !b.Ready(time.Now()) {
			t.Fatal("not ready when the timer fired")
		}
		got, _ := b.Take(nil)
		if waited := time.Since(start); waited != 3*time.Second {
			t.Fatalf("waited %v, want 3s", waited)
		}
		if !equal(got, []int{42}) {
			t.Fatalf("got %v, want [42]", got)
		}
	})
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBacklogDoesNotGrowMemory: a queue that never empties (a backlog,
// fetched as fast as it is taken) keeps its backing array bounded by what is
// queued, not by what passed through.
func TestBacklogDoesNotGrowMemory(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := New[int](Limits{MaxRecords: 100, MaxBytes: 1 << 30, MaxWait: time.Second})
	for i := range 1000 {
		b.Add(i, 1, t0)
	}
	next := 1000
	want := 0
	for range 100_000 {
		for range 100 {
			b.Add(next, 1, t0)
			next++
		}
		got, _ := b.Take(nil)
		if got[0] != want {
			t.Fatalf("took %d first, want %d", got[0], want)
		}
		want += len(got)
	}
	if b.Len() != 1000 {
		t.Fatalf("Len: got %d, want 1000", b.Len())
	}
	if c := cap(b.entries); c > 4*1100 {
		t.Fatalf("backing array holds %d entries for 1000 queued after 10M passed through", c)
	}
}
