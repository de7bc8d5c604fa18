package shutdown

import (
	"testing"
	"time"
)

// TestPlan: the phases keep their order and the shares of the budget the
// consumer has always used (a fifth, at most 5s, for committing and
// leaving), and the trace export keeps to what is left, within its bounds.
func TestPlan(t *testing.T) {
	start := time.Unix(1000, 0)
	for _, tt := range []struct {
		total                      time.Duration
		work, abandon, commit, end time.Duration // from start
	}{
		{30 * time.Second, 25 * time.Second, 27500 * time.Millisecond, 28750 * time.Millisecond, 30 * time.Second},
		{10 * time.Second, 8 * time.Second, 9 * time.Second, 9500 * time.Millisecond, 10 * time.Second},
	} {
		p := New(start, tt.total)
		got := []time.Duration{p.Work.Sub(start), p.Abandon.Sub(start), p.Commit.Sub(start), p.End.Sub(start)}
		want := []time.Duration{tt.work, tt.abandon, tt.commit, tt.end}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("SHUTDOWN_TIMEOUT %s: phases %v, want %v", tt.total, got, want)
				break
			}
		}
		if p.Close() != p.End.Add(Grace) {
			t.Errorf("Close: %v, want End+%s", p.Close(), Grace)
		}
	}
	p := New(start, 30*time.Second)
	for _, tt := range []struct{ now, want time.Duration }{
		{0, 5 * time.Second},                                      // at most 5s
		{27 * time.Second, 30 * time.Second},                      // what is left to End
		{30 * time.Second, 30*time.Second + 250*time.Millisecond}, // at least 250ms
	} {
		if got := p.Flush(start.Add(tt.now)).Sub(start); got != tt.want {
			t.Errorf("Flush at %s: %s, want %s", tt.now, got, tt.want)
		}
	}
	if got := (Plan{}).Flush(start).Sub(start); got != 5*time.Second {
		t.Errorf("Flush with no shutdown begun: %s, want 5s", got)
	}
}
