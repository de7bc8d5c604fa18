package config

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// What each kind of value should look like, shared by the parse problems of
// Load and the range problems of Validate so an operator reads one wording.
const (
	expBool        = "true, false, 1 or 0"
	expPosInt      = "a whole number >= 1"
	expPosDuration = "a Go duration > 0, such as 250ms, 3s or 2m"
	expOptDuration = expPosDuration + ", or unset for no limit"
)

// Load reads the configuration through lookup (os.LookupEnv in production,
// a map in tests; nil means os.LookupEnv), applies the contract's defaults
// and validates the result.
//
// A variable that is set but empty, or only blanks, counts as unset. Values
// are trimmed of surrounding blanks, except secrets, which are taken as
// given. Lists are comma separated; entries are trimmed, empty entries
// dropped and duplicates removed. Enumerations are case-insensitive.
//
// handlerNames are the Go handlers compiled into the binary, accepted for
// HANDLER besides log, http and discard.
//
// Every parse problem and every validation problem is returned at once as
// Errors. On error the Config holds what could be read (defaults in place of
// unparsable values); it must not be run.
//
// Load reads only the variables it knows, so it cannot see a misspelt one:
// LoadEnviron, or CheckNames next to Load, checks the names too.
func Load(lookup func(string) (string, bool), handlerNames ...string) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	l := &loader{lookup: lookup}

	var c Config
	for i := range variables {
		v := &variables[i]
		v.value.load(l, v, &c)
	}

	problems := l.problems
	if err := c.Validate(handlerNames...); err != nil {
		// A variable that did not parse kept its default; what Validate says
		// about it would only confuse, so keep the parse problem alone.
		for _, p := range err.(Errors) {
			if !slices.ContainsFunc(l.problems, func(q Problem) bool { return q.Var == p.Var }) {
				problems = append(problems, p)
			}
		}
	}
	return c, asError(problems)
}

// loader reads variables and collects parse problems instead of stopping at
// the first one.
type loader struct {
	lookup   func(string) (string, bool)
	problems Errors
}

// raw returns a variable's value, or its Fallback's when it is unset, and
// whether either is set to something other than blanks. Secrets are
// returned untrimmed: a password may legitimately begin or end with a space.
func (l *loader) raw(v *variable) (string, bool) {
	val, _ := l.lookup(v.Name)
	if strings.TrimSpace(val) == "" {
		if v.Fallback != "" {
			return l.raw(&variable{Name: v.Fallback})
		}
		return "", false
	}
	if v.Secret {
		return val, true
	}
	return strings.TrimSpace(val), true
}

func (l *loader) fail(v *variable, value, expected string) {
	if v.Secret {
		value = ""
	}
	l.problems = append(l.problems, Problem{Var: v.Name, Value: value, Expected: expected})
}

func (l *loader) str(v *variable, def string) string {
	if val, ok := l.raw(v); ok {
		return val
	}
	return def
}

// list splits a comma-separated value, trimming entries and dropping empty
// entries and duplicates.
func (l *loader) list(v *variable) []string {
	val, ok := l.raw(v)
	if !ok {
		return nil
	}
	var out []string
	for e := range strings.SplitSeq(val, ",") {
		e = strings.TrimSpace(e)
		if e != "" && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// boolean returns the value, or def when unset or unparsable, and whether a
// valid value was given.
func (l *loader) boolean(v *variable, def bool) (value, set bool) {
	val, ok := l.raw(v)
	if !ok {
		return def, false
	}
	switch strings.ToLower(val) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	l.fail(v, val, "expected "+expBool)
	return def, false
}

func (l *loader) duration(v *variable, def time.Duration) time.Duration {
	val, ok := l.raw(v)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(val)
	if err != nil {
		l.fail(v, val, "expected "+expPosDuration)
		return def
	}
	return d
}

// optionalDuration reads a duration whose zero value means "no limit". Set,
// it must be positive: Validate cannot tell a 0s that was written from an
// unset variable, and an operator who wrote 0s more likely meant "expire at
// once" than "never", so it is refused rather than read as no limit.
func (l *loader) optionalDuration(v *variable) time.Duration {
	val, ok := l.raw(v)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(val)
	if err != nil || d <= 0 {
		l.fail(v, val, "expected "+expOptDuration)
		return 0
	}
	return d
}

func (l *loader) integer(v *variable, def int64, bits int) int64 {
	val, ok := l.raw(v)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(val, 10, bits)
	if err != nil {
		l.fail(v, val, "expected "+expPosInt)
		return def
	}
	return n
}
