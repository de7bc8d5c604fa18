package consume

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDLQCopyThatFitsNoFormNamedOnReadyz: a record whose key alone is
// above the dead-letter topic's max.message.bytes cannot be written even
// without its value and headers. The partition waits (its offset is not
// committed) and /readyz says why, so that the operator raises the topic's
// limit rather than hunting an outage.
func TestDLQCopyThatFitsNoFormNamedOnReadyz(t *testing.T) {
	c := startCluster(t, 1)
	adm := kadm.NewClient(newClient(t, c))
	limit := "1000"
	if _, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: &limit}}, c.dlq); err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, c)
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: c.topic, Key: []byte(strings.Repeat("k", 2000)), Value: []byte("not json")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var log sharedLog
	m := start(t, c.config(t, map[string]string{"UNREADY_AFTER": "300ms"}), log.recorder("a"))
	want := "does not fit dead-letter topic " + c.dlq + " even without its value and headers"
	waitFor(t, 20*time.Second, "readiness to name the copy that fits no form", func() bool {
		_, why := m.health.Ready()
		return strings.Contains(why, want) && strings.Contains(why, "max.message.bytes is 1000") && getReady(t, m.health) == 503
	})
	if got := committed(t, c, cl)[0]; got > 0 {
		t.Fatalf("committed offset %d, want the record not skipped", got)
	}
}
