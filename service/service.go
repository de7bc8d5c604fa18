// Command consumer is msk-consumer: a Kafka consumer service for Amazon MSK,
// configured by environment variables. See the README for the commands, the
// variables and what the service does with records.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kzap"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"msk-consumer/config"
	"msk-consumer/handler"
	"msk-consumer/internal/builtin"
	"msk-consumer/internal/codec"
	"msk-consumer/internal/consume"
	"msk-consumer/internal/health"
	"msk-consumer/internal/metrics"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// Exit codes of the operator contract.
const (
	exitOK      = 0
	exitRuntime = 1
	exitConfig  = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

const usage = `usage: consumer [command]

commands:
  run          consume from the environment's configuration until SIGTERM (the default)
  demo         the whole pipeline on an embedded broker, with nothing to install
  healthcheck  exit 0 if this host's service answers /healthz with 200, else 1
  config       print the effective configuration, or every invalid variable (exit 2)
  version      print the version, commit and Go version
`

func run(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "run":
		return serve(lookup, stderr)
	case "demo":
		return runDemo(lookup, stdout, stderr)
	case "healthcheck":
		return healthcheck(lookup, stderr)
	case "config":
		return configCommand(lookup, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "consumer %s (commit %s, %s)\n", version, commit, runtime.Version())
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
		return exitConfig
	}
}

// configError prints every invalid variable, one per line, and returns 2.
func configError(w io.Writer, err error) int {
	fmt.Fprintln(w, "invalid configuration:")
	fmt.Fprintln(w, err)
	return exitConfig
}

// serve runs the service until SIGTERM/SIGINT.
func serve(lookup func(string) (string, bool), stderr io.Writer) int {
	cfg, warnings, err := loadConfig(lookup)
	if err != nil {
		return configFailed(stderr, err, warnings)
	}
	log, err := newLogger(cfg.Ops, stderr)
	if err != nil {
		return configError(stderr, err)
	}
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	logWarnings(log, warnings)

	ctx, stop := signalContext(log)
	defer stop()
	return service(ctx, cfg, log, nil)
}

// signalContext returns a context canceled by the first SIGTERM or SIGINT;
// a second one exits the process at once. The returned stop is idempotent.
func signalContext(log *zap.Logger) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		log.Info("signal received; shutting down (send another to exit at once)", zap.String("signal", s.String()))
		cancel()
		if s, ok = <-sigs; ok {
			log.Warn("second signal; exiting at once", zap.String("signal", s.String()))
			_ = log.Sync()
			os.Exit(exitRuntime)
		}
	}()
	// stop may be called more than once (the demo stops the signal
	// handling before its summary and again on return).
	return ctx, sync.OnceFunc(func() {
		signal.Stop(sigs)
		close(sigs)
		cancel()
	})
}

// service wires the parts from cfg and runs them until ctx is done. extra
// client options are appended (the demo's).
func service(ctx context.Context, cfg config.Config, log *zap.Logger, extra []kgo.Opt) int {
	reg := prometheus.NewRegistry()
	metrics.RegisterRuntime(reg)
	metrics.RegisterBuildInfo(reg, version, commit, runtime.Version())
	m := metrics.New(reg)
	h := health.New(cfg.Ops.UnreadyAfter, 2*cfg.Kafka.RebalanceTimeout+30*time.Second, time.Now)
	h.OnReadiness(func(ok bool) { m.Ready.Set(b2f(ok)) })

	// Both sides share one client (and schema cache) per registry.
	key, value, err := codec.NewKeyValue(ctx, cfg, codec.Options{AWSRegion: cfg.Kafka.AWSRegion})
	if err != nil {
		log.Error("invalid key or value decoding configuration", zap.Error(err))
		return exitConfig
	}
	hd, err := newHandler(cfg.Handler, log)
	if err != nil {
		log.Error("cannot build the handler", zap.String("handler", cfg.Handler.Name), zap.Error(err))
		return exitConfig
	}

	kp := kprom.NewMetrics("consumer", kprom.Subsystem("kafka"), kprom.Registerer(reg), kprom.Gatherer(reg))
	opts := append([]kgo.Opt{
		kgo.WithLogger(kzap.New(log.Named("kgo"), kzap.Level(kgoLevel(log)))),
	}, extra...)
	c, err := consume.New(cfg, consume.Deps{
		Key: key, Value: value, Handler: hd,
		Logger: log, Metrics: m, Health: h, Opts: opts,
		Hooks: []kgo.Hook{kp}, // the group member's client only: kprom registers once
	})
	if err != nil {
		log.Error("cannot build the Kafka client", zap.Error(err))
		return exitRuntime
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("/healthz", h.Handler())
	mux.Handle("/readyz", h.Handler())
	ln, err := net.Listen("tcp", cfg.Ops.MetricsAddr)
	if err != nil {
		log.Error("cannot serve metrics and health", zap.String("METRICS_ADDR", cfg.Ops.MetricsAddr), zap.Error(err))
		return exitRuntime
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	srvDone := make(chan struct{})
	go func() {
		defer close(srvDone)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", zap.Error(err))
		}
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-srvDone
	}()

	log.Info("starting",
		zap.String("version", version),
		zap.Strings("brokers", cfg.Kafka.Brokers),
		zap.Strings("topics", cfg.Kafka.Topics),
		zap.String("group", cfg.Kafka.GroupID),
		zap.String("handler", cfg.Handler.Name),
		zap.String("metrics", ln.Addr().String()))
	if err := c.Run(ctx); err != nil {
		log.Error("stopped: "+err.Error(), zap.Error(err))
		return exitRuntime
	}
	log.Info("stopped cleanly")
	return exitOK
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// kgoLevel maps the service's log level to the client's: the client logs
// at info level about every connection, which is debug for an operator.
func kgoLevel(log *zap.Logger) kgo.LogLevel {
	switch {
	case log.Core().Enabled(zapcore.DebugLevel):
		return kgo.LogLevelInfo
	case log.Core().Enabled(zapcore.InfoLevel), log.Core().Enabled(zapcore.WarnLevel):
		return kgo.LogLevelWarn
	default:
		return kgo.LogLevelError
	}
}

// newLogger builds the logger from LOG_LEVEL and LOG_FORMAT.
func newLogger(o config.Ops, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(o.LogLevel)
	if err != nil {
		return nil, err
	}
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "time"
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if o.LogFormat == config.LogConsole {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		enc = zapcore.NewJSONEncoder(ec)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core), nil
}

// healthcheck asks this host's service for /healthz, for container health
// checks in an image without curl. It reads only METRICS_ADDR.
func healthcheck(lookup func(string) (string, bool), stderr io.Writer) int {
	addr, ok := lookup("METRICS_ADDR")
	if !ok || addr == "" {
		addr = config.DefaultMetricsAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintf(stderr, "METRICS_ADDR=%q: %v\n", addr, err)
		return exitRuntime
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		fmt.Fprintln(stderr, "unhealthy:", err)
		return exitRuntime
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "unhealthy: %s: %s", resp.Status, body)
		return exitRuntime
	}
	return exitOK
}

// newHandler builds the handler named by HANDLER: a built-in one or one
// compiled into the binary.
func newHandler(cfg config.Handler, log *zap.Logger) (handler.Handler, error) {
	f, ok := builtin.Builtin(cfg.Name)
	if !ok {
		f, ok = compiled[cfg.Name]
	}
	if !ok {
		return nil, fmt.Errorf("no handler named %q in this binary", cfg.Name)
	}
	return f(handler.Deps{Config: cfg, Logger: log.Named("handler")})
}
