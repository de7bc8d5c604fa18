package consume

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrIAMUnsupported is returned while MSK IAM authentication is not built in.
var ErrIAMUnsupported = errors.New("MSK IAM authentication is not available in this build; use KAFKA_AUTH=none, plain or scram-*")

// MissingTopicsError says which configured topics do not exist. The service
// exits 1 with it: consuming a topic that does not exist, or dead-lettering
// to one, would silently do nothing.
type MissingTopicsError struct {
	Source []string // KAFKA_TOPICS entries that do not exist
	DLQ    []string // dead-letter topics that do not exist
}

func (e *MissingTopicsError) Error() string {
	var parts []string
	if len(e.Source) > 0 {
		parts = append(parts, fmt.Sprintf("topics to consume do not exist: %s (check KAFKA_TOPICS and the cluster)", strings.Join(e.Source, ", ")))
	}
	if len(e.DLQ) > 0 {
		parts = append(parts, fmt.Sprintf("dead-letter topics do not exist: %s (create them, or set DLQ_TOPIC to an existing topic)", strings.Join(e.DLQ, ", ")))
	}
	return strings.Join(parts, "; ")
}

// FatalError is an error the service cannot recover from by retrying, such
// as a failed authentication or a missing permission. The service exits 1.
type FatalError struct {
	What string // what was being done
	Err  error
}

func (e *FatalError) Error() string {
	return e.What + ": " + e.Err.Error() + hint(e.Err)
}

func (e *FatalError) Unwrap() error { return e.Err }

// fatalCodes are broker answers that retrying cannot change.
var fatalCodes = []error{
	kerr.SaslAuthenticationFailed,
	kerr.TopicAuthorizationFailed,
	kerr.GroupAuthorizationFailed,
	kerr.ClusterAuthorizationFailed,
	kerr.TransactionalIDAuthorizationFailed,
	kerr.UnsupportedSaslMechanism,
	kerr.IllegalSaslState,
}

// IsFatal reports whether err cannot be fixed by retrying.
func IsFatal(err error) bool {
	for _, f := range fatalCodes {
		if errors.Is(err, f) {
			return true
		}
	}
	return false
}

func hint(err error) string {
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState):
		return " (check KAFKA_AUTH and the credentials)"
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return " (the brokers do not offer KAFKA_AUTH's mechanism on this listener; check KAFKA_AUTH and the port)"
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		return " (the principal may not describe or read the topics, or write the dead-letter topic)"
	case errors.Is(err, kerr.GroupAuthorizationFailed):
		return " (the principal may not use KAFKA_GROUP_ID)"
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return " (the principal lacks a cluster permission, e.g. idempotent writes for the dead-letter producer)"
	}
	return ""
}

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
