package service

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/codec"
)

// loadConfig reads and checks the configuration as both `run` and `config`
// do before anything connects: config.Load through lookup; the names of the
// environment's variables (config.CheckNames: a near miss of a known name
// is a problem, other unknown names in the service's namespaces and
// variables this version does not support are warnings); the variables set
// but unused (config.Config.Unused: warnings too); and the schema
// files (codec.Check). Every problem is returned at once as config.Errors,
// so that an operator fixes them in one go.
func (a *app) loadConfig(lookup func(string) (string, bool)) (config.Config, config.Warnings, error) {
	cfg, err := config.Load(lookup, a.handlerNames()...)
	ps, _ := errors.AsType[config.Errors](err)
	warnings, namesErr := config.CheckNames(environNames(lookup))
	warnings = append(cfg.Unused(), warnings...)
	more, _ := errors.AsType[config.Errors](namesErr)
	ps = append(ps, more...)

	// A side (KEY_* or VALUE_*) that Load found invalid is not reported
	// again: its decoder would fail for the same reason, in other words.
	// codec.Check names a side's variable in each of its problems.
	schemaErrs, _ := errors.AsType[config.Errors](codec.Check(cfg))
	for _, p := range schemaErrs {
		if !slices.ContainsFunc(ps, func(q config.Problem) bool { return codecSide(q.Var) == codecSide(p.Var) }) {
			ps = append(ps, p)
		}
	}
	return cfg, warnings, ps.Err()
}

// codecSide is "KEY_" or "VALUE_" for the variables of one side of the
// decoding, and "" for any other.
func codecSide(name string) string {
	for _, side := range []string{"KEY_", "VALUE_"} {
		if strings.HasPrefix(name, side) {
			return side
		}
	}
	return ""
}

// environNames lists the variables of the process environment that lookup
// reports set. run is given a lookup, not an environment: with os.LookupEnv
// (production) this is the whole environment; with a map (tests) it is only
// what a test also put in the process environment, so that a developer's
// own variables never reach a test's names check.
func environNames(lookup func(string) (string, bool)) []string {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var names []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := lookup(name); ok {
			names = append(names, name)
		}
	}
	return names
}

// configCommand is `consumer config`: every check `run` makes before it
// connects, then the effective configuration on stdout (exit 0), or every
// problem on stderr (exit 2). Warnings go to stderr either way. With asEnv
// (--env) the configuration is an env file that config reads back
// (config.Config.PrintEnv).
func (a *app) configCommand(lookup func(string) (string, bool), asEnv bool, stdout, stderr io.Writer) int {
	cfg, warnings, err := a.loadConfig(lookup)
	ps, _ := errors.AsType[config.Errors](err)
	// run builds the handler after loading and exits 2 if it cannot, so
	// build it here too, unless its variables are already reported. The
	// built-in handlers connect on first use only; nothing is dialed.
	handlerReported := slices.ContainsFunc(ps, func(p config.Problem) bool {
		return p.Var == "HANDLER" || strings.HasPrefix(p.Var, "HTTP_HANDLER_") || strings.HasPrefix(p.Var, "LAMBDA_")
	})
	if !handlerReported {
		if _, herr := a.newHandler(cfg, zap.NewNop(), nil); herr != nil {
			ps = append(ps, config.Problem{Var: "HANDLER", Value: cfg.Handler.Name, Expected: "expected a handler that can be built: " + herr.Error()})
		}
	}
	if err := ps.Err(); err != nil {
		return configFailed(stderr, err, warnings)
	}
	writeWarnings(stderr, warnings)
	print := cfg.Print
	if asEnv {
		print = cfg.PrintEnv
	}
	if err := print(stdout); err != nil {
		return exitRuntime
	}
	return exitOK
}

// configFailed reports an invalid configuration, then its warnings (an
// unknown variable in the service's namespace may explain a problem), and
// returns 2.
func configFailed(stderr io.Writer, err error, warnings config.Warnings) int {
	code := configError(stderr, err)
	writeWarnings(stderr, warnings)
	return code
}

// writeWarnings prints one line per warning, for when there is no logger.
func writeWarnings(w io.Writer, warnings config.Warnings) {
	for _, wa := range warnings {
		fmt.Fprintln(w, "warning:", wa)
	}
}

// logWarnings logs one line per warning, once `run` has its logger.
func logWarnings(log *zap.Logger, warnings config.Warnings) {
	for _, w := range warnings {
		log.Warn("configuration: "+w.String(), zap.String("variable", w.Var))
	}
}
