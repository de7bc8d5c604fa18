package backoff

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestDelay(t *testing.T) {
	p := Policy{First: 200 * time.Millisecond, Max: 10 * time.Second}
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{1, 100 * time.Millisecond, 200 * time.Millisecond},
		{2, 200 * time.Millisecond, 400 * time.Millisecond},
		{3, 400 * time.Millisecond, 800 * time.Millisecond},
		{7, 5 * time.Second, 10 * time.Second}, // 12.8s capped at 10s
		{100, 5 * time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		for range 200 {
			if got := p.Delay(tt.n); got < tt.min || got > tt.max {
				t.Fatalf("Delay(%d): got %v, want within [%v, %v]", tt.n, got, tt.min, tt.max)
			}
		}
	}
}

func TestJitterSpreads(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 100 {
		seen[Jitter(time.Second)] = true
	}
	if len(seen) < 50 {
		t.Fatalf("Jitter gave %d distinct values of 100, want spread", len(seen))
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := Sleep(context.Background(), 3*time.Second); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Fatalf("slept %v, want 3s", got)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(time.Second); cancel() }()
		if err := Sleep(ctx, time.Hour); err != context.Canceled {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
}
