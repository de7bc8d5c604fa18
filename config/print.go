package config

import (
	"io"
	"strings"
)

// Print writes the effective configuration as NAME=value lines in the
// contract's order, defaults included, for `consumer config`.
//
// Secrets print as <redacted> when set and empty when unset; in
// HTTP_HANDLER_URL and SCHEMA_REGISTRY_URL a userinfo password, every query
// value and the fragment are redacted too. AWS_REGION is the effective
// region, whichever variable it came from. Durations use Go syntax;
// HANDLER_MAX_RECORD_AGE prints empty when there is no limit. When DLQ_TOPIC
// is unset its line lists each topic's default dead-letter topic and says so
// in a trailing comment.
func (c Config) Print(w io.Writer) error {
	var b strings.Builder
	for i := range variables {
		v := &variables[i]
		val := v.value.show(&c)
		switch {
		case v.Print != nil:
			val = v.Print(&c)
		case v.Secret && val != "":
			val = redacted
		case isURLVar(v.Name):
			val = RedactURL(val)
		}
		b.WriteString(v.Name)
		b.WriteByte('=')
		b.WriteString(val)
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}
