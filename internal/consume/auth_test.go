package consume

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/codec"
	"github.com/msk-consumer/msk-consumer/internal/health"
	"github.com/msk-consumer/msk-consumer/internal/kafkaclient"
	"github.com/msk-consumer/msk-consumer/internal/kafkaclient/kafkaclienttest"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

// The consumer's side of authentication: a refusal or a credentials
// failure that retrying cannot fix stops the consumer with a *FatalError
// (exit 1) that says what to check, and prints no secret. How the client
// authenticates is tested in internal/kafkaclient.

const (
	testRegion    = kafkaclienttest.Region
	testKeyID     = kafkaclienttest.KeyID
	testSecret    = kafkaclienttest.Secret
	testBadSecret = kafkaclienttest.BadSecret
	testRoleARN   = kafkaclienttest.RoleARN
	saslUser      = "consumer"
	saslPassword  = "s3cret-Pa55word-for-tests"
)

// authConfig is a valid configuration for c with the given overrides.
func authConfig(t *testing.T, c *kfake.Cluster, set map[string]string) config.Config {
	t.Helper()
	cfg := testConfig(t, c, set)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("invalid test configuration: %v", err)
	}
	return cfg
}

func iamEnv(pki *kafkaclienttest.PKI) map[string]string {
	return map[string]string{
		"KAFKA_AUTH":        "iam",
		"AWS_REGION":        testRegion,
		"KAFKA_TLS_CA_FILE": pki.CAFile,
	}
}

// newTestConsumer builds the whole consumer (New) with the discard
// handler, logging to cp.
func newTestConsumer(t *testing.T, cfg config.Config, cp *kafkaclienttest.Capture) *Consumer {
	t.Helper()
	key, err := codec.New(cfg.Key)
	if err != nil {
		t.Fatal(err)
	}
	value, err := codec.New(cfg.Value)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg, Deps{
		Key: key, Value: value, Handler: handler.Discard{},
		Logger: cp.Log, Metrics: metrics.New(prometheus.NewRegistry()),
		Health: health.New(cfg.Ops.UnreadyAfter, time.Minute, time.Now),
		Opts:   []kgo.Opt{cp.KgoLogger()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runConsumer runs the whole consumer and returns Run's error, or fails
// the test if Run has not returned on its own within timeout.
func runConsumer(t *testing.T, cfg config.Config, cp *kafkaclienttest.Capture, timeout time.Duration) error {
	t.Helper()
	c := newTestConsumer(t, cfg, cp)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := c.Run(ctx)
	if ctx.Err() != nil {
		t.Fatalf("Run did not stop on its own within %v (returned %v)", timeout, err)
	}
	cp.AddErr(err)
	return err
}

// TestIAMWrongSecretIsFatal: a token signed with the wrong secret is refused
// by the broker; the consumer does not retry forever but stops with a
// FatalError (exit 1) that says what failed, as whom, and what to check,
// and prints no secret.
func TestIAMWrongSecretIsFatal(t *testing.T) {
	kafkaclienttest.IsolateAWS(t)
	kafkaclienttest.SetStaticCreds(t, testKeyID, testBadSecret, "")
	pki := kafkaclienttest.NewPKI(t)
	b := kafkaclienttest.NewIAMBroker(testRegion, 0)
	c := kafkaclienttest.StartCluster(t, pki.ServerTLS(false), topic, dlqTopic)
	b.Install(c)
	b.Allow(testKeyID, testSecret, "")
	cfg := authConfig(t, c, iamEnv(pki))

	cp := kafkaclienttest.NewCapture()
	err := runConsumer(t, cfg, cp, 30*time.Second)
	var fe *FatalError
	if !errors.As(err, &fe) || !kafkaclient.IsFatal(err) {
		t.Fatalf("got %v, want a fatal *FatalError", err)
	}
	var ae *kafkaclient.AuthError
	if !errors.As(err, &ae) || !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("got %v, want an *AuthError wrapping SASL_AUTHENTICATION_FAILED", err)
	}
	msg := err.Error()
	t.Logf("the fatal line: %s", msg)
	for _, want := range []string{"KAFKA_AUTH=iam", "EnvConfigCredentials access key AKIA…MPLE", "Access denied", "kafka-cluster:Connect", "AWS_REGION"} {
		if !strings.Contains(msg, want) {
			t.Errorf("got message %q, want it to mention %q", msg, want)
		}
	}
	if strings.Contains(msg, testKeyID) {
		t.Errorf("the message holds the whole access key id: %q", msg)
	}
	secrets := append([]string{testSecret, testBadSecret}, b.Tokens()...)
	cp.AssertNoSecrets(t, secrets...)
}

// TestIAMAssumeRoleDeniedIsFatal: when STS refuses the source credentials
// (InvalidClientTokenId), the consumer tries a few times and then stops
// with a FatalError naming the role, rather than retrying forever.
func TestIAMAssumeRoleDeniedIsFatal(t *testing.T) {
	kafkaclienttest.IsolateAWS(t)
	kafkaclienttest.SetStaticCreds(t, testKeyID, testBadSecret, "")
	sts := kafkaclienttest.NewSTS(t)
	sts.Deny("InvalidClientTokenId")
	pki := kafkaclienttest.NewPKI(t)
	b := kafkaclienttest.NewIAMBroker(testRegion, 0)
	c := kafkaclienttest.StartCluster(t, pki.ServerTLS(false), topic, dlqTopic)
	b.Install(c)
	env := iamEnv(pki)
	env["KAFKA_IAM_ROLE_ARN"] = testRoleARN
	cfg := authConfig(t, c, env)

	cp := kafkaclienttest.NewCapture()
	err := runConsumer(t, cfg, cp, 30*time.Second)
	t.Logf("the fatal line: %v", err)
	var ce *kafkaclient.CredentialsError
	if !errors.As(err, &ce) || !kafkaclient.IsFatal(err) {
		t.Fatalf("got %v, want a fatal *CredentialsError", err)
	}
	if ce.Failures != kafkaclient.IAMGiveUpAfterTries {
		t.Errorf("gave up after %d failures, want %d", ce.Failures, kafkaclient.IAMGiveUpAfterTries)
	}
	msg := err.Error()
	for _, want := range []string{testRoleARN, "InvalidClientTokenId", "KAFKA_IAM_ROLE_ARN"} {
		if !strings.Contains(msg, want) {
			t.Errorf("got message %q, want it to mention %q", msg, want)
		}
	}
	if ok, fail := b.Counts(); ok+fail != 0 {
		t.Errorf("the broker saw %d tokens, want none", ok+fail)
	}
	cp.AssertNoSecrets(t, testBadSecret)
}

// TestIAMRevokedMidRunIsFatal: the consumer is running with sessions of two
// seconds when its access key stops being accepted (as when a key is
// deactivated or a role's policy loses kafka-cluster:Connect); the next
// re-authentication is refused, retried once on a new connection by the
// client, and then stops the consumer with a FatalError rather than a loop.
func TestIAMRevokedMidRunIsFatal(t *testing.T) {
	kafkaclienttest.IsolateAWS(t)
	kafkaclienttest.SetStaticCreds(t, testKeyID, testSecret, "")
	pki := kafkaclienttest.NewPKI(t)
	b := kafkaclienttest.NewIAMBroker(testRegion, 2*time.Second)
	c := kafkaclienttest.StartCluster(t, pki.ServerTLS(false), topic, dlqTopic)
	b.Install(c)
	b.Allow(testKeyID, testSecret, "")
	cfg := authConfig(t, c, iamEnv(pki))

	cp := kafkaclienttest.NewCapture()
	cons := newTestConsumer(t, cfg, cp)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx) }()
	waitFor(t, 20*time.Second, "the consumer to authenticate", func() bool { ok, _ := b.Counts(); return ok >= 3 })
	time.Sleep(500 * time.Millisecond)
	b.Revoke(testKeyID)
	select {
	case err := <-done:
		cp.AddErr(err)
		t.Logf("the fatal line: %v", err)
		var ae *kafkaclient.AuthError
		if !errors.As(err, &ae) || !kafkaclient.IsFatal(err) {
			t.Fatalf("got %v, want a fatal *AuthError", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the consumer did not stop within 30s of its key being revoked")
	}
	secrets := append([]string{testSecret}, b.Tokens()...)
	cp.AssertNoSecrets(t, secrets...)
}

// TestSCRAMRefusedIsFatal: a broker that refuses the SCRAM credentials with
// SASL_AUTHENTICATION_FAILED (as Kafka does for a wrong password) stops the
// consumer with a FatalError that names the user, and prints no password.
func TestSCRAMRefusedIsFatal(t *testing.T) {
	pki := kafkaclienttest.NewPKI(t)
	c := kafkaclienttest.StartCluster(t, pki.ServerTLS(false), topic, dlqTopic, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", saslUser, "another-password"))
	c.ControlKey(kmsg.SASLAuthenticate.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := r.(*kmsg.SASLAuthenticateRequest).ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
		resp.ErrorMessage = &msg
		return resp, nil, true
	})
	cfg := authConfig(t, c, map[string]string{
		"KAFKA_AUTH":          "scram-sha-512",
		"KAFKA_SASL_USERNAME": saslUser,
		"KAFKA_SASL_PASSWORD": saslPassword,
		"KAFKA_TLS_CA_FILE":   pki.CAFile,
	})
	cp := kafkaclienttest.NewCapture()
	err := runConsumer(t, cfg, cp, 30*time.Second)
	t.Logf("the fatal line: %v", err)
	var ae *kafkaclient.AuthError
	if !errors.As(err, &ae) || !kafkaclient.IsFatal(err) || !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("got %v, want a fatal *AuthError", err)
	}
	for _, want := range []string{"user " + saslUser, "KAFKA_AUTH=scram-sha-512", "invalid credentials", "check KAFKA_AUTH and the credentials"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got message %q, want it to mention %q", err, want)
		}
	}
	cp.AssertNoSecrets(t, saslPassword)
}
