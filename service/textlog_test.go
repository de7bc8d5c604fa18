package service

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/config"
)

// TestOpsLoggerOnATerminal checks the logger of the operator commands: on
// a terminal, lines of text a person reads beside the command's own
// output; elsewhere (a pipe, a CI log), LOG_FORMAT's lines as for the
// service.
func TestOpsLoggerOnATerminal(t *testing.T) {
	ops := config.Ops{LogLevel: "info", LogFormat: config.LogJSON}
	tests := []struct {
		name     string
		terminal bool
		want     []string // the lines, exactly
	}{
		{name: "terminal", terminal: true, want: []string{
			"redriving 3 records of orders.dlq from=orders.dlq total=3",
			"warning: topic configuration unreadable error=denied topic=orders",
			"error: kgo: produce failed kgo.broker=1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			log, err := opsLogger(ops, &b, tt.terminal)
			if err != nil {
				t.Fatal(err)
			}
			log.Info("redriving 3 records of orders.dlq", zap.String("from", "orders.dlq"), zap.Int64("total", 3))
			log.Debug("not at info level")
			log.Warn("topic configuration unreadable", zap.String("topic", "orders"), zap.Error(errors.New("denied")))
			log.Named("kgo").With(zap.Int("kgo.broker", 1)).Error("kgo: produce failed")
			got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}

	var b strings.Builder
	log, err := opsLogger(ops, &b, false)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("redriving", zap.String("from", "orders.dlq"))
	if out := b.String(); !strings.HasPrefix(out, `{"level":"info"`) || !strings.Contains(out, `"from":"orders.dlq"`) {
		t.Errorf("not a terminal: got %q, want a JSON line as LOG_FORMAT=json says", out)
	}
}
