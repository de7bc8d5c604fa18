package kafkaclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/kafkaclient/kafkaclienttest"
)

// TestCredentialRetryPolicy: credential failures are retried by the client
// and become fatal only after a few tries with an answer retrying cannot
// change, or after failing for IAMGiveUpAfter with any other error; one
// success starts the count again.
func TestCredentialRetryPolicy(t *testing.T) {
	denied := &smithy.GenericAPIError{Code: "InvalidClientTokenId", Message: "invalid"}
	expired := &smithy.GenericAPIError{Code: "ExpiredToken", Message: "expired"}
	throttled := &smithy.GenericAPIError{Code: "Throttling", Message: "slow down"}
	unreachable := errors.New("dial tcp 169.254.170.2:80: i/o timeout") // the container endpoint
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
		{name: "an unreachable container endpoint is retried for two minutes", steps: []step{
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

// TestIAMNoCredentialsIsFatalAtOnce: when no source of the AWS default
// credential chain has credentials (the environment, the shared files,
// web identity and the container endpoint are unset, and the instance
// metadata service is off, unreachable, or has no role), the first
// attempt is fatal and names the chain, instead of being retried for
// IAMGiveUpAfter while the service says it is still reaching the brokers.
// An instance metadata service that fails with a 5xx is still retried.
func TestIAMNoCredentialsIsFatalAtOnce(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	imds := func(credsStatus int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
				w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
				_, _ = w.Write([]byte("token"))
				return
			}
			w.WriteHeader(credsStatus)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	for _, tc := range []struct {
		name      string
		endpoint  string // "": IMDS disabled
		wantFatal bool
	}{
		{name: "instance metadata disabled", wantFatal: true},
		{name: "instance metadata unreachable", endpoint: closedURL, wantFatal: true},
		{name: "no instance profile", endpoint: imds(http.StatusNotFound), wantFatal: true},
		{name: "instance metadata failing", endpoint: imds(http.StatusInternalServerError), wantFatal: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kafkaclienttest.IsolateAWS(t)
			if tc.endpoint != "" {
				t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
				t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", tc.endpoint)
			}
			a, err := newIAM(config.Kafka{AWSRegion: testRegion}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.token(context.Background())
			var ce *CredentialsError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *CredentialsError", err)
			}
			if IsFatal(err) != tc.wantFatal || ce.Failures != 1 || ce.NoSource != tc.wantFatal {
				t.Fatalf("got %v (fatal %v, no source %v), want fatal %v on the first failure", err, IsFatal(err), ce.NoSource, tc.wantFatal)
			}
			if !tc.wantFatal {
				return
			}
			t.Logf("the error: %v", err)
			for _, want := range []string{"no credentials", "AWS default credential chain", "AWS_ACCESS_KEY_ID", "AWS_PROFILE",
				"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS", "instance profile"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got %q, want it to name %q", err, want)
				}
			}
		})
	}
}
