package kafkaclienttest

import (
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kzap"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Capture is everything a test's process printed: log lines (the
// service's and kgo's, at debug level) and error strings.
type Capture struct {
	Log *zap.Logger // the service's logger

	logs   *observer.ObservedLogs
	mu     sync.Mutex
	errors []string
}

// NewCapture starts an empty capture.
func NewCapture() *Capture {
	core, logs := observer.New(zap.DebugLevel)
	return &Capture{logs: logs, Log: zap.New(core)}
}

// KgoLogger is the client option that logs kgo's lines, at debug level,
// to c.
func (c *Capture) KgoLogger() kgo.Opt {
	return kgo.WithLogger(kzap.New(c.Log.Named("kgo"), kzap.Level(kgo.LogLevelDebug)))
}

// AddErr records an error the process would print; nil is ignored.
func (c *Capture) AddErr(err error) {
	if err != nil {
		c.mu.Lock()
		c.errors = append(c.errors, err.Error())
		c.mu.Unlock()
	}
}

// Text renders every captured line as the JSON logger would print it.
func (c *Capture) Text(t testing.TB) string {
	t.Helper()
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	var sb strings.Builder
	for _, e := range c.logs.All() {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		sb.Write(buf.Bytes())
		buf.Free()
	}
	c.mu.Lock()
	for _, e := range c.errors {
		sb.WriteString(e + "\n")
	}
	c.mu.Unlock()
	return sb.String()
}

// AssertNoSecrets fails if any secret appears in what was printed.
func (c *Capture) AssertNoSecrets(t testing.TB, secrets ...string) {
	t.Helper()
	out := c.Text(t)
	if out == "" {
		t.Fatal("nothing was captured; the check would prove nothing")
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("a secret (%.6s…) appears in the output", s)
		}
	}
}
