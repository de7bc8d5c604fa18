// Package service runs msk-consumer, a Kafka consumer service for Amazon
// MSK configured by environment variables: every command of the stock
// binary (run, demo, config, healthcheck, version, and the operator
// commands check, redrive and offsets), with the caller's Go
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
// It does not handle records itself: github.com/msk-consumer/msk-consumer/handler is the API a
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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kzap"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/builtin"
	"github.com/msk-consumer/msk-consumer/internal/codec"
	"github.com/msk-consumer/msk-consumer/internal/consume"
	"github.com/msk-consumer/msk-consumer/internal/health"
	"github.com/msk-consumer/msk-consumer/internal/idempotency"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
	"github.com/msk-consumer/msk-consumer/internal/shutdown"
	"github.com/msk-consumer/msk-consumer/internal/status"
	"github.com/msk-consumer/msk-consumer/internal/tracing"
	"github.com/msk-consumer/msk-consumer/internal/tracing/provider"
)

// Set at build time with
// -ldflags "-X github.com/msk-consumer/msk-consumer/service.version=... -X github.com/msk-consumer/msk-consumer/service.commit=...".
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
	a := &app{ctx: ctx, handlers: handlers, stdout: env.Stdout, stderr: env.Stderr, lookup: env.Lookup}
	return a.run(env.Args)
}

// app is one run of a command.
type app struct {
	ctx      context.Context
	handlers Handlers
	stdout   io.Writer                   // where commands print, and the console span exporter writes
	stderr   io.Writer                   // where commands print errors
	lookup   func(string) (string, bool) // the environment, for the resource detectors
	// tracerProvider is the service's, for the handler (Deps); nil until
	// service sets it, and with tracing off: a no-op one then.
	tracerProvider trace.TracerProvider
	// metricsListener, if not nil, is where service serves metrics and
	// health instead of listening on METRICS_ADDR (the demo's, which may
	// have had to find a free port).
	metricsListener net.Listener
}

const usage = `usage: consumer [command] [flags]
       consumer --version | -h | --help

commands:
  run          consume from the environment's configuration until SIGTERM (the default)
  demo         the whole pipeline on an embedded broker, with nothing to install
  healthcheck  exit 0 if this host's service answers /healthz with 200, else 1
  status       a running service's status page for a terminal (/status.json): partitions,
               lanes and batches in flight, stalls, the last dead letters; exit 0 if it is
               ready, 1 if not or if it does not answer
                 --url URL       the service (default this host's METRICS_ADDR)
                 --output json   the page's JSON as is
  config       print the effective configuration, or every invalid variable (exit 2)
                 --env           as an env file (docker --env-file, kubectl
                                 --from-env-file) that config reads back
  version      print the version, commit and Go version (also --version)
  check        preflight against the real cluster: brokers, authentication, topics and
               dead-letter topics, group, schema registry, handler URL; one line per
               check, exit 0 only if all pass
                 --timeout 15s   how long each network check may take
  redrive      send the dead-letter topic's records back to their original topics
               (original key, value and headers; dlq.* headers removed; dlq.redrive.count
               incremented); progress is committed in group <KAFKA_GROUP_ID>.redrive, so an
               interrupted redrive resumes; it stops at the end offsets as of its start
                 --from TOPIC      the dead-letter topic (default DLQ_TOPIC or <topic>.dlq)
                 --to TOPIC        send every record here instead of dlq.original.topic
                 --kind K,...      only decode, handler, validation, expired or
                                   delivery-limit records
                 --group G         only records of this dlq.consumer.group (default
                                   KAFKA_GROUP_ID; * for all)
                 --since T         failed at or after T (RFC 3339, or a duration ago: 2h)
                 --until T         failed at or before T
                 --partition N     only this partition of the dead-letter topic
                 --limit N         stop after sending N records
                 --max-redrives 3  skip and report records already redriven this often
                 --dry-run         print what would be sent; send and commit nothing
                 --from-start      ignore earlier progress; read from the topic's start
  offsets      per partition of KAFKA_TOPICS: the group's committed offset (a share
               group's start offset), end offset, lag, the next record's timestamp and
               its owning member
                 --topic T,...     other topics than KAFKA_TOPICS
  offsets reset --to earliest|latest|<RFC 3339 time>|<offset>
               move the group (replay or skip): prints the plan, refuses while the group
               has members (exit 1, naming them), applies with --yes or a confirmation
                 --topic T --partition N --yes --dry-run

Every command reads the service's environment (KAFKA_*, DLQ_TOPIC, SCHEMA_REGISTRY_*,
HANDLER and HTTP_HANDLER_*, LOG_*) and authenticates as the service does; each prints
its own usage with -h or --help, and starts nothing then. Exit codes: 0 success, 1 a
runtime failure (or a failed check), 2 an invalid configuration, flag or argument.
`

// The synopses of the commands that take no flags of their own, for
// their -h.
const (
	runSynopsis         = "run\n\nConsumes from the environment's configuration until SIGTERM or SIGINT."
	demoSynopsis        = "demo\n\nThe whole pipeline on an embedded broker, with nothing to install\n(METRICS_ADDR, LOG_* and OTEL_* apply)."
	healthcheckSynopsis = "healthcheck\n\nExits 0 if this host's service answers /healthz with 200, else 1 (reads METRICS_ADDR)."
	versionSynopsis     = "version\n\nPrints the version, commit and Go version."
	configSynopsis      = "config [--env]\n\nRuns every check run makes before it connects, then prints the effective\nconfiguration (exit 0) or every problem (exit 2)."
)

func (a *app) run(args []string) int {
	lookup, stdout, stderr := a.lookup, a.stdout, a.stderr
	cmd, rest := "run", args
	if len(args) > 0 {
		cmd, rest = args[0], args[1:]
	}
	switch cmd {
	case "run":
		if code, ok := noFlags(cmd, runSynopsis, rest, stderr); !ok {
			return code
		}
		return a.serve(lookup, stderr)
	case "demo":
		if code, ok := noFlags(cmd, demoSynopsis, rest, stderr); !ok {
			return code
		}
		return a.runDemo(lookup, stdout, stderr)
	case "healthcheck":
		if code, ok := noFlags(cmd, healthcheckSynopsis, rest, stderr); !ok {
			return code
		}
		return healthcheck(lookup, stderr)
	case "config":
		fs := newFlags(cmd, configSynopsis, stderr)
		asEnv := fs.Bool("env", false, "print an env file (docker --env-file, kubectl create configmap --from-env-file) that config reads back: no comments after values, derived defaults and secrets left out")
		if code, ok := parseFlags(fs, rest); !ok {
			return code
		}
		return a.configCommand(lookup, *asEnv, stdout, stderr)
	case "check":
		return a.checkCommand(rest, lookup, stdout, stderr)
	case "redrive":
		return a.redriveCommand(rest, lookup, stdout, stderr)
	case "offsets":
		return a.offsetsCommand(rest, lookup, stdout, stderr)
	case "status":
		return a.statusCommand(rest, lookup, stdout, stderr)
	case "version", "--version", "-version":
		if code, ok := noFlags("version", versionSynopsis, rest, stderr); !ok {
			return code
		}
		fmt.Fprintf(stdout, "consumer %s (commit %s, %s)\n", version, commit, runtime.Version())
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	if name, ok := strings.CutPrefix(cmd, "-"); ok {
		name, _, _ = strings.Cut(strings.TrimPrefix(name, "-"), "=")
		fmt.Fprintf(stderr, "flag provided but not defined: -%s\n\n%s", name, usage)
	} else {
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
	}
	return exitConfig
}

// noFlags parses the arguments of a command that takes neither flags nor
// arguments, as parseFlags does: -h prints its usage and starts nothing
// (exit 0), an unknown flag or an argument is exit 2.
func noFlags(name, synopsis string, args []string, stderr io.Writer) (int, bool) {
	return parseFlags(newFlags(name, synopsis, stderr), args)
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
	setMemoryLimit(cfg.Batch.MaxBufferedBytes, log)

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
	started := time.Now()
	reg := prometheus.NewRegistry()
	metrics.RegisterRuntime(reg)
	metrics.RegisterBuildInfo(reg, version, commit, runtime.Version())
	m := metrics.New(reg)
	h := health.New(cfg.Ops.UnreadyAfter, 2*cfg.Kafka.RebalanceTimeout+30*time.Second, time.Now)
	h.OnReadiness(func(ok bool) { m.Ready.Set(b2f(ok)) })

	prov, err := a.startTracing(ctx, cfg, log)
	if err != nil {
		log.Error("cannot set up tracing", zap.String("OTEL_TRACES_EXPORTER", string(cfg.Tracing.Exporter)), zap.Error(err))
		return exitConfig
	}
	// The consumer's shutdown plan, once Run returned: the phases after it
	// (the metrics server, then the trace export) keep to it.
	var plan shutdown.Plan
	defer a.stopTracing(prov, &plan, log)

	// Both sides share one client (and schema cache) per registry.
	key, value, err := codec.NewKeyValue(ctx, cfg, codec.Options{AWSRegion: cfg.Kafka.AWSRegion})
	if err != nil {
		log.Error("invalid key or value decoding configuration", zap.Error(err))
		return exitConfig
	}
	hd, err := a.newHandler(cfg, log, reg)
	if err != nil {
		log.Error("cannot build the handler", zap.String("handler", cfg.Handler.Name), zap.Error(err))
		return exitConfig
	}
	idem, err := idempotency.FromConfig(ctx, cfg, m)
	if err != nil {
		log.Error("cannot build the idempotency store", zap.String("IDEMPOTENCY_STORE", string(cfg.Idempotency.Store)), zap.Error(err))
		return exitConfig
	}
	if idem != nil {
		defer idem.Close()
	}

	letters := &status.Letters{}
	kp := kprom.NewMetrics("consumer", kprom.Subsystem("kafka"), kprom.Registerer(reg), kprom.Gatherer(reg))
	opts := append([]kgo.Opt{
		kgo.WithLogger(kzap.New(log.Named("kgo"), kzap.Level(kgoLevel(log)))),
	}, extra...)
	c, err := consume.New(cfg, consume.Deps{
		Key: key, Value: value, Handler: hd,
		Logger: log, Metrics: m, Health: h, Opts: opts,
		Hooks:       []kgo.Hook{kp}, // the group member's client only: kprom registers once
		Idempotency: idem,
		Tracer:      tracing.New(prov.TracerProvider(), cfg.Kafka.GroupID, cfg.Handler.Name).WithPropagators(cfg.Tracing.PropagatorNames()),
		Letters:     letters,
	})
	if err != nil {
		log.Error("cannot build the Kafka client", zap.Error(err))
		return exitRuntime
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("/healthz", h.Handler())
	mux.Handle("/readyz", h.Handler())
	st := statusPage(ctx, cfg, started, reg, h, c, letters)
	mux.Handle("/status", st.Handler())
	mux.Handle("/status.json", st.Handler())
	ln := a.metricsListener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Ops.MetricsAddr); err != nil {
			log.Error("cannot serve metrics and health on METRICS_ADDR="+cfg.Ops.MetricsAddr+": "+err.Error()+"; set METRICS_ADDR to a free address",
				zap.String("METRICS_ADDR", cfg.Ops.MetricsAddr), zap.Error(err))
			return exitRuntime
		}
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
		sctx, cancel := context.WithDeadline(context.Background(), plan.Server(time.Now()))
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
		zap.String("idempotency", string(cfg.Idempotency.Store)),
		zap.String("tracing", tracingState(cfg.Tracing)),
		zap.String("metrics", ln.Addr().String()))
	err = c.Run(ctx)
	plan = c.Plan()
	if err != nil {
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
func (a *app) newHandler(full config.Config, log *zap.Logger, reg prometheus.Registerer) (handler.Handler, error) {
	cfg := full.Handler
	f, ok := builtin.BuiltinFor(cfg.Name, full.EventSource(), reg)
	if !ok {
		f, ok = a.handlers[cfg.Name]
	}
	if !ok {
		return nil, fmt.Errorf("no handler named %q in this binary", cfg.Name)
	}
	tp := a.tracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return f(handler.Deps{Config: cfg, Logger: log.Named("handler"), TracerProvider: tp})
}

// startTracing sets up the OpenTelemetry SDK from the OTEL_* variables:
// nil with tracing off. An exporter that cannot be built is an error; a
// resource detector that fails (an ECS metadata endpoint that does not
// answer) is logged and costs only its attributes.
func (a *app) startTracing(ctx context.Context, cfg config.Config, log *zap.Logger) (*provider.Provider, error) {
	prov, warn, err := provider.New(ctx, cfg.Tracing, provider.Options{
		Version: version, Stdout: a.stdout, MaxLinks: cfg.Batch.MaxRecords, Lookup: a.lookup,
	})
	if err != nil || prov == nil {
		return nil, err
	}
	if warn != nil {
		log.Warn("tracing: some resource attributes could not be detected", zap.Error(warn))
	}
	// The SDK reports failed exports (a collector that cannot be
	// reached) through its global error handler, which otherwise writes
	// plain lines to stderr.
	tlog := log.Named("otel")
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		tlog.Warn("tracing: spans could not be exported", zap.Error(err))
	}))
	a.tracerProvider = prov.TracerProvider()
	log.Info("tracing on",
		zap.String("exporter", string(cfg.Tracing.Exporter)),
		zap.String("endpoint", tracingEndpoint(cfg.Tracing)),
		zap.String("sampler", string(cfg.Tracing.Sampler)),
		zap.String("service", cfg.Tracing.Service()))
	return prov, nil
}

// tracingState is OTEL_TRACES_EXPORTER, or none when OTEL_SDK_DISABLED
// turns tracing off, for the start line.
func tracingState(t config.Tracing) string {
	if t.Disabled {
		return "none (OTEL_SDK_DISABLED)"
	}
	return string(t.Exporter)
}

// tracingEndpoint is where spans go, for the log, with anything that may
// be a credential redacted.
func tracingEndpoint(t config.Tracing) string {
	if t.Exporter == config.ExporterConsole {
		return "stdout"
	}
	return config.RedactURL(t.OTLPEndpoint())
}

// stopTracing exports the spans still queued and stops the exporter, by
// the deadline plan gives it (shutdown.Plan.Flush). It does nothing for a
// nil prov.
func (a *app) stopTracing(prov *provider.Provider, plan *shutdown.Plan, log *zap.Logger) {
	if prov == nil {
		return
	}
	fctx, cancel := context.WithDeadline(context.Background(), plan.Flush(time.Now()))
	defer cancel()
	if err := prov.Shutdown(fctx); err != nil {
		log.Warn("tracing: spans still queued at shutdown were not all exported", zap.Error(err))
	}
}

// handlerNames lists the Go handlers given to Run, sorted.
func (a *app) handlerNames() []string {
	return slices.Sorted(maps.Keys(a.handlers))
}
