// Package service runs msk-consumer, a Kafka consumer service for Amazon
// MSK configured by environment variables: every command of the stock
// binary (run, demo, config, healthcheck, version), with the caller's Go
// handlers selectable by HANDLER beside the built-in ones (log, http,
// discard). A team that writes its handler in its own module runs it with
// every variable, metric and guarantee of the service with a main.go of a
// few lines:
//
//	func main() {
//		service.Main(service.Handlers{"orders": orders.New})
//	}
//
// See examples/own-binary and the README ("Writing your own handler").
//
// It does not handle records itself: msk-consumer/handler is the API a
// handler is written against.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
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

// Set at build time with
// -ldflags "-X msk-consumer/service.version=... -X msk-consumer/service.commit=...".
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

// Handlers are Go handlers by the name HANDLER selects them with. A name of
// a built-in handler (log, http, discard) is refused by Main and Run.
type Handlers map[string]handler.Factory

// Main runs the command named by the process's first argument ("run" when
// there is none), configured by the process environment, and exits the
// process with the command's exit code: 0 after a clean shutdown (SIGTERM or
// SIGINT), 2 for an invalid configuration, 1 for a runtime error.
func Main(handlers Handlers) {
	os.Exit(Run(context.Background(), Env{Args: os.Args[1:]}, handlers))
}

// Env is what a command reads and where it writes; the zero value is the
// process's.
type Env struct {
	Args           []string                    // the command and its arguments, without the program name
	Lookup         func(string) (string, bool) // nil: os.LookupEnv
	Stdout, Stderr io.Writer                   // nil: os.Stdout, os.Stderr
}

// Run runs a command as Main does, and returns its exit code. Canceling ctx
// stops `run` and `demo` as SIGTERM does.
func Run(ctx context.Context, env Env, handlers Handlers) int {
	if env.Lookup == nil {
		env.Lookup = os.LookupEnv
	}
	if env.Stdout == nil {
		env.Stdout = os.Stdout
	}
	if env.Stderr == nil {
		env.Stderr = os.Stderr
	}
	for name := range handlers {
		if _, ok := builtin.Builtin(name); ok {
			fmt.Fprintf(env.Stderr, "handler %q: the name of a built-in handler\n", name)
			return exitConfig
		}
	}
	a := &app{ctx: ctx, handlers: handlers}
	return a.run(env.Args, env.Lookup, env.Stdout, env.Stderr)
}

// app is one run of a command.
type app struct {
	ctx      context.Context
	handlers Handlers
}

const usage = `usage: consumer [command]

commands:
  run          consume from the environment's configuration until SIGTERM (the default)
  demo         the whole pipeline on an embedded broker, with nothing to install
  healthcheck  exit 0 if this host's service answers /healthz with 200, else 1
  config       print the effective configuration, or every invalid variable (exit 2)
  version      print the version, commit and Go version
`

func (a *app) run(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "run":
		return a.serve(lookup, stderr)
	case "demo":
		return a.runDemo(lookup, stdout, stderr)
	case "healthcheck":
		return healthcheck(lookup, stderr)
	case "config":
		return a.configCommand(lookup, stdout, stderr)
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
func (a *app) serve(lookup func(string) (string, bool), stderr io.Writer) int {
	cfg, warnings, err := a.loadConfig(lookup)
	if err != nil {
		return configFailed(stderr, err, warnings)
	}
	log, err := newLogger(cfg.Ops, stderr)
	if err != nil {
		return configError(stderr, err)
	}
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	logWarnings(log, warnings)

	ctx, stop := signalContext(a.ctx, log)
	defer stop()
	return a.service(ctx, cfg, log, nil)
}

// signalContext returns a context canceled with parent or by the first
// SIGTERM or SIGINT; a second signal exits the process at once. The returned
// stop is idempotent.
func signalContext(parent context.Context, log *zap.Logger) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
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
func (a *app) service(ctx context.Context, cfg config.Config, log *zap.Logger, extra []kgo.Opt) int {
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
	hd, err := a.newHandler(cfg.Handler, log)
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
func (a *app) newHandler(cfg config.Handler, log *zap.Logger) (handler.Handler, error) {
	f, ok := builtin.Builtin(cfg.Name)
	if !ok {
		f, ok = a.handlers[cfg.Name]
	}
	if !ok {
		return nil, fmt.Errorf("no handler named %q in this binary", cfg.Name)
	}
	return f(handler.Deps{Config: cfg, Logger: log.Named("handler")})
}

// handlerNames lists the Go handlers given to Run, sorted.
func (a *app) handlerNames() []string {
	return slices.Sorted(maps.Keys(a.handlers))
}
