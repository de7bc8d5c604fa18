package consume

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"msk-consumer/config"
)

// AuthError is a SASL handshake or authentication that a broker refused. It
// says who was authenticating, so that the one line the service prints before
// it exits names the principal to check. It unwraps to the broker's answer
// (a *kerr.Error such as kerr.SaslAuthenticationFailed), so IsFatal and
// errors.Is see the code.
type AuthError struct {
	Auth      config.Auth // KAFKA_AUTH
	Principal string      // who authenticated: a user name, an IAM role or credential source; never a secret
	Reauth    bool        // whether this was a re-authentication of a live connection (KIP-368)
	Broker    string      // the broker's address
	Err       error
}

func (e *AuthError) Error() string {
	what := "authentication"
	if e.Reauth {
		what = "re-authentication"
	}
	return fmt.Sprintf("Kafka %s (KAFKA_AUTH=%s) as %s at %s refused: %v", what, e.Auth, e.Principal, e.Broker, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// CredentialsError is a failure to get AWS credentials (or to sign an MSK
// IAM token with them) before authenticating. Fatal says whether retrying
// has been given up: after a few consecutive failures with an answer that
// retrying cannot change (invalid or expired keys, access denied by STS,
// empty credentials), or after failing continuously for a while with any
// other error (IMDS or STS unreachable, throttling). Until then the client
// retries on its next connection attempt.
type CredentialsError struct {
	Principal string // what credentials were asked for: a role ARN or the default chain
	Failures  int    // consecutive failures, this one included
	Fatal     bool
	Err       error
}

func (e *CredentialsError) Error() string {
	return fmt.Sprintf("getting AWS credentials for MSK IAM (%s) failed %d time(s) in a row: %v", e.Principal, e.Failures, e.Err)
}

func (e *CredentialsError) Unwrap() error { return e.Err }

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

// IsFatal reports whether err cannot be fixed by retrying: a broker's
// authentication or authorization refusal (also when it comes wrapped in an
// *AuthError), or a *CredentialsError that retrying has given up on.
// Network errors and transient broker answers are not fatal: the client
// retries them.
func IsFatal(err error) bool {
	if ce, ok := errors.AsType[*CredentialsError](err); ok {
		return ce.Fatal
	}
	for _, f := range fatalCodes {
		if errors.Is(err, f) {
			return true
		}
	}
	return false
}

func hint(err error) string {
	if _, ok := errors.AsType[*CredentialsError](err); ok {
		return " (check where the AWS credentials come from: the environment, the web identity token file (IRSA), the ECS task role or the instance profile; KAFKA_IAM_ROLE_ARN must be assumable by them; and that the clock is right)"
	}
	if ae, ok := errors.AsType[*AuthError](err); ok && ae.Auth == config.AuthIAM &&
		(errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState)) {
		return " (check that the IAM principal's policy allows kafka-cluster:Connect on this cluster (see deploy/iam), that AWS_REGION is the cluster's region, that the credentials are valid and the clock is right, and that KAFKA_BROKERS is the cluster's IAM listener, port 9098 or 9198)"
	}
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
