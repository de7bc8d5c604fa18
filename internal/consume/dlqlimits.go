package consume

import (
	"context"
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/msk-consumer/msk-consumer/internal/dlq"
	"github.com/msk-consumer/msk-consumer/internal/preflight"
)

// dlqLimits holds the max.message.bytes of each dead-letter topic: read at
// start, and read again when a copy is refused as too large
// (dlq.Deps.RefreshMaxBytes), so that an operator who raises a topic's
// limit gets whole copies from then on. The producer's batch limit and the
// dead-letter writer both read it.
type dlqLimits struct {
	adm *kadm.Client // nil until the group client exists

	mu sync.Mutex
	m  map[string]int32
}

func newDLQLimits(atStart map[string]int32) *dlqLimits {
	m := make(map[string]int32, len(atStart))
	for t, n := range atStart {
		m[t] = n
	}
	return &dlqLimits{m: m}
}

// get is the record batch limit of a dead-letter topic: its
// max.message.bytes as last read, or Kafka's default.
func (l *dlqLimits) get(topic string) int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return dlq.MaxMessageBytes(int64(l.m[topic]))
}

var errNoLimit = errors.New("max.message.bytes not readable")

// refresh reads topic's max.message.bytes again and keeps it.
func (l *dlqLimits) refresh(ctx context.Context, topic string) (int32, error) {
	if l.adm == nil {
		return 0, errNoLimit
	}
	rcs, err := l.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return 0, err
	}
	configs, _, err := preflight.ReadConfigs(rcs)
	if err != nil {
		return 0, err
	}
	n := configs[topic].MaxMessageBytes
	if n <= 0 {
		return 0, errNoLimit
	}
	l.mu.Lock()
	l.m[topic] = n
	l.mu.Unlock()
	return n, nil
}
