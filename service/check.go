package service

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kzap"
	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/builtin"
	"github.com/msk-consumer/msk-consumer/internal/kafkaclient"
	"github.com/msk-consumer/msk-consumer/internal/preflight"
)

// opsEnv is what an operator command (check, redrive, offsets) runs with:
// the service's configuration, checked as `run` checks it, its logger and
// the client options it connects with.
type opsEnv struct {
	cfg  config.Config
	log  *zap.Logger
	opts []kgo.Opt
	ctx  context.Context // canceled by SIGTERM/SIGINT (signalContext)
	stop context.CancelFunc
}

// done stops the signal handling and flushes the log.
func (e *opsEnv) done() {
	e.stop()
	_ = e.log.Sync()
}

// opsSetup loads the configuration, builds the client options and installs
// the signal handling (env.ctx; call env.done when finished); on a
// problem it returns the exit code (2 for the configuration, 1 for files
// or credentials that cannot be loaded).
func (a *app) opsSetup(lookup func(string) (string, bool), stderr io.Writer) (*opsEnv, int, bool) {
	cfg, warnings, err := a.loadConfig(lookup)
	if err != nil {
		return nil, configFailed(stderr, err, warnings), false
	}
	writeWarnings(stderr, warnings)
	log, err := newOpsLogger(cfg.Ops, stderr)
	if err != nil {
		return nil, configError(stderr, err), false
	}
	opts, err := kafkaclient.Options(cfg.Kafka, kafkaclient.Deps{Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "cannot build the Kafka client:", err)
		return nil, exitRuntime, false
	}
	// The client logs only errors: the commands print what they do.
	opts = append(opts, kgo.WithLogger(kzap.New(log.Named("kgo"), kzap.Level(kgo.LogLevelError))))
	ctx, stop := signalContext(a.ctx, log)
	return &opsEnv{cfg: cfg, log: log, opts: opts, ctx: ctx, stop: stop}, exitOK, true
}

// newFlags returns a flag set for a command that reports its errors to
// stderr and prints usage, then the environment it reads, with -h.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: consumer %s\n\n", synopsis)
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\nIt reads the service's environment (KAFKA_*, DLQ_TOPIC, the registry and handler variables, LOG_*): see consumer help and the README.\n")
	}
	return fs
}

// parseFlags parses args and returns the exit code of a failed parse: 0
// for -h, 2 otherwise.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK, false
		}
		return exitConfig, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitConfig, false
	}
	return exitOK, true
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// checkCommand is `consumer check`: every preflight check against the
// cluster and the downstreams, one line each; exit 0 only if all pass.
func (a *app) checkCommand(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := newFlags("check", "check [--timeout 15s] [--output text|json]", stderr)
	timeout := fs.Duration("timeout", 15*time.Second, "how long each network check may take")
	output := outputFlag(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	asJSON, ok := jsonOutput(*output, stderr)
	if !ok {
		return exitConfig
	}
	env, code, ok := a.opsSetup(lookup, stderr)
	if !ok {
		return code
	}
	defer env.done()
	ctx := env.ctx
	d := preflight.Deps{Opts: env.opts, Timeout: *timeout}
	if env.cfg.Kafka.Auth == config.AuthIAM && env.cfg.Kafka.IAMRoleARN == "" {
		d.Principal = iamCaller(env.cfg.Kafka.AWSRegion, *timeout)
	}
	if env.cfg.Handler.Name == config.HandlerLambda {
		d.LambdaProbe = lambdaProbe(env.cfg, env.log)
	}
	rs := preflight.Check(ctx, env.cfg, d)
	if asJSON {
		writeCheckJSON(stdout, rs)
	} else {
		preflight.Write(stdout, rs)
	}
	if !preflight.Passed(rs) {
		return exitRuntime
	}
	return exitOK
}

// checkJSON is `consumer check --output json`: passed is the exit code's
// verdict (no check failed), failed how many did; each check has a
// status of pass, warn, fail or skip, its detail and what to fix ("" if
// nothing).
type checkJSON struct {
	Passed bool          `json:"passed"`
	Failed int           `json:"failed"`
	Checks []checkResult `json:"checks"`
}

type checkResult struct {
	Check  string `json:"check"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

func writeCheckJSON(w io.Writer, rs []preflight.Result) {
	doc := checkJSON{Passed: preflight.Passed(rs), Checks: []checkResult{}}
	for _, r := range rs {
		st := map[preflight.Status]string{preflight.Pass: "pass", preflight.Warn: "warn", preflight.Fail: "fail", preflight.Skip: "skip"}[r.Status]
		if r.Status == preflight.Fail {
			doc.Failed++
		}
		doc.Checks = append(doc.Checks, checkResult{Check: r.Check, Status: st, Detail: r.Detail, Fix: r.Fix})
	}
	writeJSON(w, doc)
}

// iamCaller names the principal of the AWS default credential chain with
// sts:GetCallerIdentity (which needs no permission).
func iamCaller(region string, timeout time.Duration) func(context.Context) string {
	return func(ctx context.Context) string {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		arn, err := callerARN(ctx, region)
		if err != nil {
			return "the AWS default credential chain's principal (sts:GetCallerIdentity: " + err.Error() + ")"
		}
		return arn
	}
}

// callerARN returns the ARN of the AWS default credential chain's
// principal.
func callerARN(ctx context.Context, region string) (string, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return "", err
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", err
	}
	if out.Arn == nil {
		return "(no ARN)", nil
	}
	return *out.Arn, nil
}

// lambdaProbe is consumer check's probe of HANDLER=lambda: an Invoke with
// InvocationType DryRun through the handler's own client (its credentials,
// region and endpoint settings).
func lambdaProbe(cfg config.Config, log *zap.Logger) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		h, err := builtin.NewLambda(cfg.Handler, cfg.EventSource(), log)
		if err != nil {
			return cfg.Handler.LambdaFunction, err
		}
		return cfg.Handler.LambdaFunction, h.DryRun(ctx)
	}
}
