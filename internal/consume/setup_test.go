package consume

import (
	"testing"
	"time"
)

// TestAssignedBeforeSetupFinished: the client joins the group as soon as
// it is built, so the first assignment can arrive while Run is still
// building the flow control and the processor. The callback must wait for
// them instead of starting workers with neither (a nil dereference).
func TestAssignedBeforeSetupFinished(t *testing.T) {
	testHookClientBuilt = func() { time.Sleep(2 * time.Second) }
	t.Cleanup(func() { testHookClientBuilt = nil })
	c := startCluster(t, 3)
	cl := newClient(t, c)
	p := produce(t, c, cl, 300, nil)
	var log sharedLog
	m := start(t, c.config(t, nil), log.recorder("a"))
	waitFor(t, 30*time.Second, "300 deliveries", func() bool { return len(log.snapshot()) >= 300 })
	checkCommittedAtEnd(t, c, cl, p)
	if err := m.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkAllDelivered(t, p, log.snapshot(), nil)
}
