package service

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/health"
	"github.com/msk-consumer/msk-consumer/internal/status"
)

// statusPage builds /status and /status.json from the consumer (src), the
// health's stalls and the registry's counters, and starts sampling them
// for the charts until ctx is done.
func statusPage(ctx context.Context, cfg config.Config, started time.Time, reg prometheus.Gatherer, h *health.Health, src status.Source, letters *status.Letters) *status.Status {
	smp := status.NewSampler(0, 0, status.GatherTotals(reg), src)
	go smp.Run(ctx)
	return status.New(status.Config{
		Version: version, Commit: commit, Started: started,
		Group: cfg.Kafka.GroupID, Protocol: string(cfg.Kafka.GroupProtocol),
		UnreadyAfter: cfg.Ops.UnreadyAfter,
	}, status.Deps{
		Source: src,
		Stalls: func(now time.Time) []status.Stall {
			var out []status.Stall
			for _, s := range h.Stalls(now) {
				out = append(out, status.Stall{Key: s.Key, Reason: s.Reason, Since: s.Since})
			}
			return out
		},
		Ready:   func() bool { ok, _ := h.Ready(); return ok },
		Letters: letters,
		History: smp,
	})
}
