package consume

import (
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/msk-consumer/msk-consumer/internal/kafkaclient"
)

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

// FatalError is an error the service cannot recover from by retrying
// (kafkaclient.IsFatal), such as a failed authentication or a missing
// permission. The service exits 1.
type FatalError struct {
	What string // what was being done
	Err  error
}

func (e *FatalError) Error() string {
	return e.What + ": " + e.Err.Error() + hint(e.Err)
}

func (e *FatalError) Unwrap() error { return e.Err }

// hint says what to check about err: the connection settings for a
// credentials or authentication failure, or the principal's permissions for
// what the consumer does.
func hint(err error) string {
	if h := kafkaclient.Hint(err); h != "" {
		return " (" + h + ")"
	}
	switch {
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		return " (the principal may not describe or read the topics, or write the dead-letter topic)"
	case errors.Is(err, kerr.GroupAuthorizationFailed):
		return " (the principal may not use KAFKA_GROUP_ID)"
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return " (the principal lacks a cluster permission, e.g. idempotent writes for the dead-letter producer)"
	}
	return ""
}
