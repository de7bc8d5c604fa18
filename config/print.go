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

// PrintEnv writes the configuration as an env file, for `consumer config
// --env`: what docker --env-file and kubectl create configmap
// --from-env-file read, and what Load reads back to the same effective
// configuration. One NAME=value line per variable that has a value, in the
// contract's order, the value as Load reads it and never followed by a
// comment; comments have lines of their own.
//
// Left out, each with a comment line that says why: a secret, and a URL
// that holds a password or query values (they belong in a secret store,
// and a redacted value read back would be wrong); a variable set but
// unused (Unused). Left out without a word: an unset variable, and a
// default that follows other variables (KAFKA_TLS from KAFKA_AUTH,
// DLQ_TOPIC from KAFKA_TOPICS, IDEMPOTENCY_KEY_PREFIX from KAFKA_GROUP_ID,
// ...), so that a file reused with another group or topic follows them.
func (c Config) PrintEnv(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# consumer config --env: unset variables and defaults that follow other variables are left out\n")
	for i := range variables {
		v := &variables[i]
		val := v.value.show(&c)
		if d, ok := v.value.(interface{ derived(*Config) bool }); val == "" || ok && d.derived(&c) {
			continue
		}
		switch {
		case v.unused(&c) != "":
			b.WriteString("# " + v.Name + " left out: " + v.unused(&c) + "\n")
		case v.Secret:
			b.WriteString("# " + v.Name + " left out: a secret; set it from your secret store\n")
		case isURLVar(v.Name) || v.Name == envOTELEndpoint || v.Name == envOTELTracesEndpoint:
			if r := RedactURL(val); r != val {
				b.WriteString("# " + v.Name + " left out: it holds a password or query values; set it from your secret store (" + r + ")\n")
				continue
			}
			b.WriteString(v.Name + "=" + val + "\n")
		default:
			b.WriteString(v.Name + "=" + val + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
