package kafkaclient

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/msk-consumer/msk-consumer/config"
)

// errClosedDuringAuth is the outcome of an authentication that ended with
// the connection and no answer from the broker: the client failed to make
// its first message (no credentials, a token that could not be signed) or
// the connection dropped.
var errClosedDuringAuth = errors.New("connection closed before the authentication finished")

// errEmptyCredentials is what the signer refuses: a provider that answered
// with no access key or no secret.
var errEmptyCredentials = errors.New("the AWS credentials have no access key id or no secret access key")

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
	// NoSource says that no source of the AWS default credential chain
	// has credentials (it fell through to the instance metadata service,
	// which is off, unreachable or has no role): fatal at once.
	NoSource bool
	Err      error
}

func (e *CredentialsError) Error() string {
	if e.NoSource {
		return fmt.Sprintf("getting AWS credentials for MSK IAM (%s): no credentials: %s; the last source said: %v", e.Principal, ChainSources, e.Err)
	}
	return fmt.Sprintf("getting AWS credentials for MSK IAM (%s) failed %d time(s) in a row: %v", e.Principal, e.Failures, e.Err)
}

// ChainSources lists where the AWS default credential chain looks, in
// order, for the message that says none of them had credentials.
const ChainSources = "none of the AWS default credential chain's sources has them: the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), " +
	"the shared files (AWS_PROFILE, ~/.aws/credentials and ~/.aws/config), web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN: IRSA on EKS), " +
	"the container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI: the ECS task role, EKS Pod Identity) and the EC2 instance profile (IMDS)"

func (e *CredentialsError) Unwrap() error { return e.Err }

// brokerMessageError is a broker's error code with the message it sent.
type brokerMessageError struct {
	err error
	msg string
}

func (e *brokerMessageError) Error() string { return e.err.Error() + ": " + e.msg }
func (e *brokerMessageError) Unwrap() error { return e.err }

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

// IsFatal reports whether err, from a client built with Options, cannot be
// fixed by retrying: a broker's authentication or authorization refusal
// (also when it comes wrapped in an *AuthError), or a *CredentialsError
// that retrying has given up on. Network errors and transient broker
// answers are not fatal: the client retries them.
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

// Hint says what to check about the connection settings when err is a
// credentials failure or an authentication the brokers refused, or returns
// "". What to check about an authorization refusal (topics, group, cluster
// permissions) depends on what the client was doing, so the caller says it.
func Hint(err error) string {
	if _, ok := errors.AsType[*CredentialsError](err); ok {
		return "check where the AWS credentials come from: the environment, the web identity token file (IRSA), the ECS task role or the instance profile; KAFKA_IAM_ROLE_ARN must be assumable by them; and that the clock is right"
	}
	if ae, ok := errors.AsType[*AuthError](err); ok && ae.Auth == config.AuthIAM &&
		(errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState)) {
		return "check that the IAM principal's policy allows kafka-cluster:Connect on this cluster (see deploy/iam), that AWS_REGION is the cluster's region, that the credentials are valid and the clock is right, and that KAFKA_BROKERS is the cluster's IAM listener, port 9098 or 9198"
	}
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState):
		return "check KAFKA_AUTH and the credentials"
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return "the brokers do not offer KAFKA_AUTH's mechanism on this listener; check KAFKA_AUTH and the port"
	}
	return ""
}
