package config

import (
	"net/url"
	"strings"
)

// RedactURL hides what in a URL may be a credential: the password in its
// userinfo (as url.URL.Redacted does), every query value, since APIs take
// tokens as ?token=... or ?sig=..., and the fragment. Query keys are kept,
// in their order, so that an operator can still tell which URL it is; a
// query element without '=' is hidden whole, since it may be a bare token.
// A value that does not parse is hidden entirely, since we cannot tell where
// a secret would be.
func RedactURL(raw string) string {
	if raw == "" || raw == redacted {
		// Problems are redacted when made and again when rendered, so
		// redacting must be idempotent: "<redacted>" would parse as a path.
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return redacted
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, part := range parts {
			if key, _, ok := strings.Cut(part, "="); ok {
				parts[i] = key + "=" + redactedValue
			} else if part != "" {
				parts[i] = redactedValue
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = redactedValue, ""
	}
	return u.Redacted()
}

// redactedValue stands in for a query value or a fragment in a URL. It is
// a plain word, not redacted, so that the printed URL stays a URL.
const redactedValue = "REDACTED"

// redacted stands in for the value of a secret that is set.
const redacted = "<redacted>"
