package config

import (
	"errors"
	"math"
	"slices"
	"strings"
)

// maxNameEdits is how far a variable's name may be from a known name and
// still be taken for a typo of it: two edits catch a dropped, doubled or
// swapped letter and a wrong separator, while names of other software
// (AWS_*, ECS_*, GO*) are all further than that from ours.
const maxNameEdits = 2

// unsupportedVars are variables of the operator contract that this version
// does not implement yet. Set, each gets a warning (it is ignored), never an
// error: an operator may deploy one configuration to old and new versions.
var unsupportedVars = []string{}

// otelPrefix is the OpenTelemetry SDKs' namespace, which platforms (the
// ADOT and EKS add-ons, ECS task definitions made for other services) fill
// in every container. Its variables that are not in the table never stop
// the service: those the Go SDK reads itself (otelSDKVars) are accepted
// silently, the others get a warning (ignored), and a name within two edits
// of one of ours gets a "did you mean" warning rather than a problem, since
// it may be another SDK's variable.
const otelPrefix = "OTEL_"

// otelSDKVars are OpenTelemetry variables that the Go SDK reads from the
// process environment by itself when tracing is on; the service passes them
// through without checking them (README, Tracing).
var otelSDKVars = []string{
	"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
	"OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
	"OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_CLIENT_KEY", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
	"OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_EXPORT_TIMEOUT", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
	"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
	"OTEL_SPAN_EVENT_COUNT_LIMIT", "OTEL_SPAN_LINK_COUNT_LIMIT",
	"OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
	"OTEL_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
}

// namespaces are the prefixes of the service's own variables (and of those
// the contract reserves for it). An unknown variable in one is most likely
// meant for the service, so it gets a warning, even when it is too far from
// any known name to be a typo. AWS_ is not one: it belongs to the AWS SDK.
var namespaces = []string{
	"KAFKA_", "BATCH_", "HANDLER_", "HTTP_HANDLER_", "DLQ_",
	"SCHEMA_REGISTRY_", "VALUE_", "KEY_", "LOG_", "METRICS_", "MAX_",
	"SHUTDOWN_", "STARTUP_", "UNREADY_", "PROCESSING_", "PARTITION_",
	"IDEMPOTENCY_",
}

// Warning is a variable that does not stop the service but that an operator
// should hear of: set but ignored, because this version does not support it
// or because no such variable exists. Var is the variable's name; its value
// is never part of a warning, since a misspelt secret is still a secret.
type Warning struct {
	Var     string
	Message string
}

// String renders the warning on one line, e.g.
//
//	OTEL_LOGS_EXPORTER: an OpenTelemetry variable this service does not read; ignored
func (w Warning) String() string { return w.Var + ": " + w.Message }

// Warnings are the warnings about an environment: those of CheckNames are
// sorted by variable name, those of Config.Unused in the table's order.
type Warnings []Warning

// LoadEnviron is Load over environ, a list of KEY=VALUE pairs as returned by
// os.Environ (where a name appears twice, the first one counts, as with
// os.Getenv), followed by CheckNames over the same list. Its Errors hold the
// problems of both, in the contract's order; problems with unknown names
// come last. Its warnings are the variables set but unused (Config.Unused),
// then those of CheckNames.
func LoadEnviron(environ []string, handlerNames ...string) (Config, Warnings, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := vars[k]; !dup {
			vars[k] = v
		}
	}
	c, err := Load(func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}, handlerNames...)
	warnings, nameErr := CheckNames(environ)
	var ps, more Errors
	errors.As(err, &ps)
	errors.As(nameErr, &more)
	return c, append(c.Unused(), warnings...), asError(append(ps, more...))
}

// CheckNames checks the names of the variables in environ (KEY=VALUE pairs
// as returned by os.Environ, or bare names) against the variables the
// service knows. Values are not looked at. A name that is not known:
//
//   - is skipped when it is a Kubernetes service-link variable (*_PORT,
//     *_PORT_*, *_SERVICE_HOST, *_SERVICE_PORT*): Kubernetes sets those for
//     every service in the namespace, and a service named "kafka" or
//     "metrics" would otherwise look like ours;
//   - is a warning when the contract names it but this version does not
//     support it (unsupportedVars);
//   - is accepted, or a warning, when it is an OpenTelemetry variable
//     (OTEL_*: see otelPrefix);
//   - is a problem, "did you mean X?", when it is within two edits of a known
//     name X, counting a swap of two adjacent characters as one edit
//     (optimal string alignment distance) and ignoring case, so that
//     kafka_brokers is caught too. Where an unsupported name is at least as
//     near, it is a warning instead: a typo of an ignored variable must not
//     stop the service;
//   - is a warning when it starts with one of the service's own prefixes
//     (namespaces);
//   - is otherwise none of the service's business.
//
// Problems are returned as Errors, sorted by name; nil when there are none.
func CheckNames(environ []string) (Warnings, error) {
	var names []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if name != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)

	var (
		ps       Errors
		warnings Warnings
	)
	for _, name := range names {
		if isKnownVar(name) || isServiceLink(name) {
			continue
		}
		if isUnsupported(name) {
			warnings = append(warnings, Warning{Var: name, Message: "set, but this version does not support it; ignored"})
			continue
		}
		upper := strings.ToUpper(name)
		if strings.HasPrefix(upper, otelPrefix) {
			if w, ok := otelWarning(name, upper); ok {
				warnings = append(warnings, w)
			}
			continue
		}
		known, dk := nearest(upper, knownVars)
		unsupported, du := nearest(upper, unsupportedVars)
		switch {
		case dk <= maxNameEdits && dk < du:
			expected := "unknown variable; did you mean " + known + "?"
			if dk == 0 {
				expected = "unknown variable (names are case-sensitive); did you mean " + known + "?"
			}
			ps = append(ps, Problem{Var: name, Expected: expected})
		case du <= maxNameEdits:
			warnings = append(warnings, Warning{Var: name, Message: "unknown variable, ignored; did you mean " + unsupported + "? (this version does not support it either)"})
		default:
			if ns := namespaceOf(upper); ns != "" {
				warnings = append(warnings, Warning{Var: name, Message: "unknown variable in the service's " + ns + " namespace; ignored"})
			}
		}
	}
	return warnings, asError(ps)
}

// knownVars are the names Load reads: the table's, then their fallbacks.
var knownVars = func() []string {
	names := slices.Clone(varOrder)
	for _, v := range variables {
		if v.Fallback != "" {
			names = append(names, v.Fallback)
		}
	}
	return names
}()

func isKnownVar(name string) bool {
	return slices.Contains(knownVars, name)
}

func isUnsupported(name string) bool {
	return slices.Contains(unsupportedVars, name)
}

// otelWarning is what CheckNames says of an OpenTelemetry variable that is
// not in the table (see otelPrefix), if anything.
func otelWarning(name, upper string) (Warning, bool) {
	if slices.Contains(otelSDKVars, name) {
		return Warning{}, false
	}
	var ours []string
	for _, v := range knownVars {
		if strings.HasPrefix(v, otelPrefix) {
			ours = append(ours, v)
		}
	}
	if known, d := nearest(upper, append(ours, otelSDKVars...)); d <= maxNameEdits {
		return Warning{Var: name, Message: "unknown OpenTelemetry variable, ignored; did you mean " + known + "?"}, true
	}
	return Warning{Var: name, Message: "an OpenTelemetry variable this service does not read; ignored"}, true
}

// isServiceLink reports whether name has the shape of a variable Kubernetes
// sets for a service in the pod's namespace (enableServiceLinks), such as
// KAFKA_PORT_9092_TCP_ADDR for a service named kafka.
func isServiceLink(name string) bool {
	name = strings.ToUpper(name)
	return strings.HasSuffix(name, "_PORT") ||
		strings.Contains(name, "_PORT_") ||
		strings.HasSuffix(name, "_SERVICE_HOST") ||
		strings.Contains(name, "_SERVICE_PORT")
}

// namespaceOf returns the longest of the service's prefixes name starts
// with, or "".
func namespaceOf(name string) string {
	ns := ""
	for _, p := range namespaces {
		if strings.HasPrefix(name, p) && len(p) > len(ns) {
			ns = p
		}
	}
	return ns
}

// nearest returns the candidate nearest to name and its distance; the first
// in candidates wins a tie. With no candidates the distance is larger than
// any name.
func nearest(name string, candidates []string) (string, int) {
	best, bestD := "", math.MaxInt
	for _, c := range candidates {
		if d := osaDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best, bestD
}

// osaDistance is the optimal string alignment distance between a and b:
// the number of insertions, deletions, substitutions and swaps of two
// adjacent bytes that turn a into b, no substring being edited twice.
// Variable names are ASCII, so bytes are characters.
func osaDistance(a, b string) int {
	// Three rows of the usual dynamic programme: i-2, i-1 and i.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
