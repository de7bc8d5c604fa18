package config

import (
	"slices"
	"strconv"
	"strings"
)

// Problem is one invalid variable: its name, the offending value (empty when
// the variable is unset, and always empty for a secret) and what was
// expected instead.
type Problem struct {
	Var      string // the environment variable, e.g. "BATCH_MAX_RECORDS"
	Value    string // the offending value; never a secret
	Expected string // what would have been valid, in words; rendered after the colon
}

// Error renders the problem on one line, e.g.
//
//	BATCH_MAX_RECORDS="abc": expected a whole number >= 1
//	KAFKA_BROKERS: required: comma-separated host:port list
//
// The value of a secret variable is never rendered, nor a password inside a
// URL, even if a caller put one in Value.
func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.Var)
	if p.Value != "" && !isSecret(p.Var) {
		v := p.Value
		if isURLVar(p.Var) {
			v = RedactURL(v)
		}
		b.WriteByte('=')
		b.WriteString(strconv.Quote(v))
	}
	b.WriteString(": ")
	b.WriteString(p.Expected)
	return b.String()
}

// Errors is every problem found in a configuration, in the order the
// variables appear in the operator contract. Load and Validate return it as
// their error; find it with
//
//	var errs config.Errors
//	if errors.As(err, &errs) { ... }
type Errors []Problem

// Error renders one line per problem, so that an operator reads every
// invalid variable at once.
func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, p := range e {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns a copy of e in the contract's order as an error, or nil when
// e is empty. It is for callers that gather the problems of several checks
// (Load, CheckNames, codec.Check) and report them as one list.
func (e Errors) Err() error {
	return asError(slices.Clone(e))
}

// sortProblems orders problems by the contract's table order; problems of
// the same variable keep the order in which they were found.
func sortProblems(ps Errors) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return varIndex(a.Var) - varIndex(b.Var)
	})
}

// asError returns ps sorted as an error, or a nil error when ps is empty (an
// empty Errors would be a non-nil error that says nothing).
func asError(ps Errors) error {
	if len(ps) == 0 {
		return nil
	}
	sortProblems(ps)
	return ps
}
