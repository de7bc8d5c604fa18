package kafkaclient

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"
)

// TestCredentialRetryPolicy: credential failures are retried by the client
// and become fatal only after a few tries with an answer retrying cannot
// change, or after failing for IAMGiveUpAfter with any other error; one
// success starts the count again.
func TestCredentialRetryPolicy(t *testing.T) {
	denied := &smithy.GenericAPIError{Code: "InvalidClientTokenId", Message: "invalid"}
	expired := &smithy.GenericAPIError{Code: "ExpiredToken", Message: "expired"}
	throttled := &smithy.GenericAPIError{Code: "Throttling", Message: "slow down"}
	unreachable := errors.New("dial tcp 169.254.169.254:80: i/o timeout")
	good := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret, Source: "test"}
	type step struct {
		after     time.Duration // since the previous step
		err       error         // nil: the provider answers with good (or empty) credentials
		empty     bool
		wantFatal bool
		wantOK    bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{name: "InvalidClientTokenId is fatal on the third try", steps: []step{
			{err: denied}, {after: time.Second, err: denied}, {after: 2 * time.Second, err: denied, wantFatal: true},
		}},
		{name: "ExpiredToken is fatal on the third try", steps: []step{
			{err: expired}, {err: expired}, {err: expired, wantFatal: true},
		}},
		{name: "empty credentials are fatal on the third try", steps: []step{
			{empty: true}, {empty: true}, {empty: true, wantFatal: true},
		}},
		{name: "an unreachable IMDS is retried for two minutes", steps: []step{
			{err: unreachable}, {after: 10 * time.Second, err: unreachable}, {after: 30 * time.Second, err: unreachable},
			{after: 30 * time.Second, err: unreachable}, {after: 49 * time.Second, err: unreachable},
			{after: time.Second, err: unreachable, wantFatal: true},
		}},
		{name: "throttling is transient", steps: []step{
			{err: throttled}, {err: throttled}, {err: throttled}, {err: throttled},
		}},
		{name: "a success starts the count again", steps: []step{
			{err: denied}, {err: denied}, {wantOK: true}, {err: denied}, {err: denied}, {err: denied, wantFatal: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var cur step
			a := &iamAuth{
				region: testRegion,
				creds: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					if cur.empty {
						return aws.Credentials{Source: "test"}, nil
					}
					return good, cur.err
				}),
				log: zap.NewNop(), now: func() time.Time { return now },
				giveUpTries: IAMGiveUpAfterTries, giveUpAfter: IAMGiveUpAfter,
			}
			for i, s := range tc.steps {
				now = now.Add(s.after)
				cur = s
				auth, err := a.token(context.Background())
				if s.wantOK {
					if err != nil || auth.Token == "" {
						t.Fatalf("step %d: got (%q, %v), want a token", i, auth.Token, err)
					}
					continue
				}
				var ce *CredentialsError
				if !errors.As(err, &ce) {
					t.Fatalf("step %d: got %v, want a *CredentialsError", i, err)
				}
				if got := IsFatal(err); got != s.wantFatal {
					t.Fatalf("step %d: got IsFatal %v, want %v (%v)", i, got, s.wantFatal, err)
				}
			}
		})
	}
}

// TestDescribeCreds: the principal shown in messages never holds the whole
// access key id, and never the secret or session token.
func TestDescribeCreds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		creds aws.Credentials
		want  string
	}{
		{name: "long-term key", creds: aws.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "s", Source: "EnvConfigCredentials"}, want: "EnvConfigCredentials access key AKIA…MPLE"},
		{name: "temporary key", creds: aws.Credentials{AccessKeyID: "ASIAIOSFODNN7EXAMPLF", SecretAccessKey: "s", SessionToken: "tok", Source: "AssumeRoleProvider"}, want: "AssumeRoleProvider access key ASIA…MPLF"},
		{name: "short id, no source", creds: aws.Credentials{AccessKeyID: "AKIA1", SecretAccessKey: "s"}, want: "AWS credentials access key …"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeCreds(tc.creds); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
