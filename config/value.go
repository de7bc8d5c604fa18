package config

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// value is how one variable is read into its field of a Config, checked on
// its own and shown. Each kind of value below (a string, a list, a choice, a
// bool, a duration, a whole number) holds a function that returns the
// field's address in a Config, so the same entry serves Load (which writes
// it), Validate and Print (which only read it).
type value interface {
	// load reads the variable through l into c. The variables before it in
	// the table are already in c.
	load(l *loader, v *variable, c *Config)
	// check reports what is wrong with the field on its own; rules that
	// involve other variables are in Config.validateCombinations.
	check(ck *validator, v *variable, c *Config)
	// show is the field as text, unredacted, as Load would read it back;
	// "" when unset.
	show(c *Config) string
	// set reports whether the field differs from its zero value.
	set(c *Config) bool
	// fields are pointers to the fields of c that load writes.
	fields(c *Config) []any
}

// str is a string. Empty means unset.
type str struct {
	at       func(*Config) *string
	def      string
	required string              // the problem when empty; "" if optional
	expect   func(string) string // what was expected instead of the value, or ""; also given ""
}

func (s str) load(l *loader, v *variable, c *Config) { *s.at(c) = l.str(v, s.def) }

func (s str) check(ck *validator, v *variable, c *Config) {
	val := *s.at(c)
	if val == "" && s.required != "" {
		ck.add(v.Name, "", s.required)
		return
	}
	if s.expect != nil {
		if e := s.expect(val); e != "" {
			ck.add(v.Name, val, e)
		}
	}
}

func (s str) show(c *Config) string  { return *s.at(c) }
func (s str) set(c *Config) bool     { return *s.at(c) != "" }
func (s str) fields(c *Config) []any { return []any{s.at(c)} }

// list is a comma-separated list. Empty means unset.
type list struct {
	at       func(*Config) *[]string
	required string              // the problem when empty; "" if optional
	expect   func(string) string // what was expected instead of an entry, or ""
}

func (s list) load(l *loader, v *variable, c *Config) { *s.at(c) = l.list(v) }

func (s list) check(ck *validator, v *variable, c *Config) {
	entries := *s.at(c)
	if len(entries) == 0 && s.required != "" {
		ck.add(v.Name, "", s.required)
	}
	for _, e := range entries {
		if exp := s.expect(e); exp != "" {
			ck.add(v.Name, e, exp)
		}
	}
}

func (s list) show(c *Config) string  { return strings.Join(*s.at(c), ",") }
func (s list) set(c *Config) bool     { return len(*s.at(c)) > 0 }
func (s list) fields(c *Config) []any { return []any{s.at(c)} }

// choice is one of a fixed set of words, read case-insensitively unless
// caseSensitive.
type choice[T ~string] struct {
	at            func(*Config) *T
	def           T
	choices       []T
	caseSensitive bool
	// orHandlers accepts the names of the Go handlers compiled into the
	// binary (Validate's handlerNames) too.
	orHandlers bool
	// defFor, if not nil, is the default given the variables read before
	// (def is the documented one).
	defFor func(*Config) T
	// explicit, if not nil, records whether a value was given.
	explicit func(*Config) *bool
}

func (s choice[T]) load(l *loader, v *variable, c *Config) {
	def := s.def
	if s.defFor != nil {
		def = s.defFor(c)
	}
	val, given := l.raw(v)
	if !given {
		val = string(def)
	}
	if s.explicit != nil {
		*s.explicit(c) = given
	}
	if !s.caseSensitive {
		val = strings.ToLower(val)
	}
	*s.at(c) = T(val)
}

func (s choice[T]) check(ck *validator, v *variable, c *Config) {
	choices := make([]string, len(s.choices))
	for i, ch := range s.choices {
		choices[i] = string(ch)
	}
	if s.orHandlers {
		choices = append(choices, ck.handlerNames...)
	}
	if val := string(*s.at(c)); !slices.Contains(choices, val) {
		ck.add(v.Name, val, "expected "+oneOf(choices...))
	}
}

func (s choice[T]) show(c *Config) string { return string(*s.at(c)) }
func (s choice[T]) set(c *Config) bool    { return *s.at(c) != "" }
func (s choice[T]) fields(c *Config) []any {
	if s.explicit != nil {
		return []any{s.at(c), s.explicit(c)}
	}
	return []any{s.at(c)}
}

// boolean is true, false, 1 or 0, in any case.
type boolean struct {
	at func(*Config) *bool
	// def is the default given the variables read before; nil means false.
	def func(*Config) bool
	// explicit, if not nil, records whether a valid value was given.
	explicit func(*Config) *bool
}

func (s boolean) load(l *loader, v *variable, c *Config) {
	def := s.def != nil && s.def(c)
	val, given := l.boolean(v, def)
	*s.at(c) = val
	if s.explicit != nil {
		*s.explicit(c) = given
	}
}

func (boolean) check(*validator, *variable, *Config) {}

func (s boolean) show(c *Config) string { return strconv.FormatBool(*s.at(c)) }
func (s boolean) set(c *Config) bool    { return *s.at(c) }

func (s boolean) fields(c *Config) []any {
	if s.explicit != nil {
		return []any{s.at(c), s.explicit(c)}
	}
	return []any{s.at(c)}
}

// duration is a Go duration > 0. An optional one is zero when unset, which
// means "no limit"; set, it must be > 0 too.
type duration struct {
	at       func(*Config) *time.Duration
	def      time.Duration
	optional bool
}

func (s duration) load(l *loader, v *variable, c *Config) {
	if s.optional {
		*s.at(c) = l.optionalDuration(v)
	} else {
		*s.at(c) = l.duration(v, s.def)
	}
}

func (s duration) check(ck *validator, v *variable, c *Config) {
	d := *s.at(c)
	switch {
	case s.optional && d < 0:
		// Zero is "no limit" (unset); Load refuses a zero written out.
		ck.add(v.Name, d.String(), "expected "+expOptDuration)
	case !s.optional && d <= 0:
		ck.add(v.Name, d.String(), "expected "+expPosDuration)
	}
}

func (s duration) show(c *Config) string {
	if d := *s.at(c); d != 0 || !s.optional {
		return d.String()
	}
	// Empty, as it was read: "0s" would not load back.
	return ""
}

func (s duration) set(c *Config) bool     { return *s.at(c) != 0 }
func (s duration) fields(c *Config) []any { return []any{s.at(c)} }

// number is a whole number >= 1 that fits T.
type number[T int | int64] struct {
	at  func(*Config) *T
	def T
}

func (s number[T]) load(l *loader, v *variable, c *Config) {
	bits := strconv.IntSize
	if _, ok := any(s.def).(int64); ok {
		bits = 64
	}
	*s.at(c) = T(l.integer(v, int64(s.def), bits))
}

func (s number[T]) check(ck *validator, v *variable, c *Config) {
	if n := int64(*s.at(c)); n < 1 {
		ck.add(v.Name, strconv.FormatInt(n, 10), "expected "+expPosInt)
	}
}

func (s number[T]) show(c *Config) string  { return strconv.FormatInt(int64(*s.at(c)), 10) }
func (s number[T]) set(c *Config) bool     { return *s.at(c) != 0 }
func (s number[T]) fields(c *Config) []any { return []any{s.at(c)} }

// startOffset is KAFKA_START_OFFSET: earliest or latest (in any case), or
// an RFC 3339 time, kept as written.
type startOffset struct {
	at  func(*Config) *StartOffset
	def StartOffset
}

func (s startOffset) load(l *loader, v *variable, c *Config) {
	val := l.str(v, string(s.def))
	if lower := StartOffset(strings.ToLower(val)); slices.Contains(startOffsets, lower) {
		val = string(lower)
	}
	*s.at(c) = StartOffset(val)
}

func (s startOffset) check(ck *validator, v *variable, c *Config) {
	val := *s.at(c)
	if _, isTime := val.Time(); !isTime && !slices.Contains(startOffsets, val) {
		ck.add(v.Name, string(val), "expected "+oneOf(startOffsets...)+", or an RFC 3339 time such as 2026-11-22T11:30:00Z")
	}
}

func (s startOffset) show(c *Config) string  { return string(*s.at(c)) }
func (s startOffset) set(c *Config) bool     { return *s.at(c) != "" }
func (s startOffset) fields(c *Config) []any { return []any{s.at(c)} }

// Time returns the time KAFKA_START_OFFSET names, and whether it names one
// rather than earliest or latest: a group with no committed offset then
// starts at the first record whose timestamp is at or after it (at the end
// of a partition with none).
func (s StartOffset) Time() (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, string(s))
	return t, err == nil
}

// derived reports a default that follows other variables and was not
// given (KAFKA_TLS from KAFKA_AUTH): PrintEnv leaves it out.
func (s boolean) derived(c *Config) bool {
	return s.def != nil && s.explicit != nil && !*s.explicit(c)
}
