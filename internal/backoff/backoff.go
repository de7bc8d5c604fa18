// Package backoff computes retry delays: exponential, capped, with jitter so
// that many partitions retrying at once do not line up.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is a first delay that doubles on each retry up to Max.
type Policy struct {
	First time.Duration
	Max   time.Duration
}

// Delay returns the delay before retry number n (1 for the first retry):
// First·2^(n-1), capped at Max, then jittered into [d/2, d].
func (p Policy) Delay(n int) time.Duration {
	d := p.First
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	if p.Max > 0 {
		d = min(d, p.Max)
	}
	return Jitter(d)
}

// Jitter returns a duration drawn uniformly from [d/2, d].
func Jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Sleep waits d or until ctx is done, returning ctx's error in that case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
