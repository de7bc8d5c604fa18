package consume

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kzap"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"msk-consumer/config"
	"msk-consumer/internal/codec"
	"msk-consumer/internal/handler"
	"msk-consumer/internal/health"
	"msk-consumer/internal/metrics"
)

const (
	testRegion    = "eu-west-1"
	testKeyID     = "AKIATESTKEY0000EXAMPLE"
	testSecret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYTESTSECRETKEY"
	testBadSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGSECRETKY"
)

// capture is everything a test's process printed: log lines (the
// service's and kgo's, at debug level) and error strings.
type capture struct {
	logs   *observer.ObservedLogs
	log    *zap.Logger
	mu     sync.Mutex
	errors []string
}

func newCapture() *capture {
	core, logs := observer.New(zap.DebugLevel)
	return &capture{logs: logs, log: zap.New(core)}
}

func (c *capture) kgoLogger() kgo.Opt {
	return kgo.WithLogger(kzap.New(c.log.Named("kgo"), kzap.Level(kgo.LogLevelDebug)))
}

func (c *capture) addErr(err error) {
	if err != nil {
		c.mu.Lock()
		c.errors = append(c.errors, err.Error())
		c.mu.Unlock()
	}
}

// text renders every captured line as the JSON logger would print it.
func (c *capture) text(t *testing.T) string {
	t.Helper()
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	var sb strings.Builder
	for _, e := range c.logs.All() {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		sb.Write(buf.Bytes())
		buf.Free()
	}
	c.mu.Lock()
	for _, e := range c.errors {
		sb.WriteString(e + "\n")
	}
	c.mu.Unlock()
	return sb.String()
}

// assertNoSecrets fails if any secret appears in what was printed.
func (c *capture) assertNoSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	out := c.text(t)
	if out == "" {
		t.Fatal("nothing was captured; the check would prove nothing")
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("a secret (%.6s…) appears in the output", s)
		}
	}
}

// isolateAWS makes the AWS default chain see only what the test sets: no
// shared files, no IMDS.
func isolateAWS(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS"} {
		t.Setenv(k, "")
	}
}

func setStaticCreds(t *testing.T, keyID, secret, session string) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", keyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", session)
}

// startTLSCluster starts a one-broker kfake cluster with a TLS listener and
// the source and dead-letter topics.
func startTLSCluster(t *testing.T, tc *tls.Config, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	all := append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, topic), kfake.SeedTopics(1, dlqTopic)}, opts...)
	if tc != nil {
		all = append(all, kfake.TLS(tc))
	}
	c, err := kfake.NewCluster(all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// authConfig is a valid configuration for c with the given overrides.
func authConfig(t *testing.T, c *kfake.Cluster, set map[string]string) config.Config {
	t.Helper()
	cfg := testConfig(t, c, set)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("invalid test configuration: %v", err)
	}
	return cfg
}

// authClient is a kgo client from the service's client options for k, with
// extra options, counted on m and logged to cp.
func authClient(t *testing.T, k config.Kafka, m *metrics.Metrics, cp *capture, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts, err := ClientOptsWith(k, m, cp.log)
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, cp.kgoLogger())
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// consumeAll reads the source topic from the start until it has want
// records, and returns how many it read.
func consumeAll(t *testing.T, cl *kgo.Client, want int, timeout time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	seen := map[[2]int64]bool{}
	for len(seen) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d records, want %d (timed out)", len(seen), want)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch error: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { seen[[2]int64{int64(r.Partition), r.Offset}] = true })
	}
	return len(seen)
}

func iamEnv(pki *testPKI) map[string]string {
	return map[string]string{
		"KAFKA_AUTH":        "iam",
		"AWS_REGION":        testRegion,
		"KAFKA_TLS_CA_FILE": pki.caFile,
	}
}

// TestIAMAuthenticatesAndConsumes: with static credentials from the
// environment, the client signs an MSK IAM token that the broker verifies
// (SigV4 recomputed from the known secret), then produces and consumes over
// TLS; authentications are counted, and no secret is printed.
func TestIAMAuthenticatesAndConsumes(t *testing.T) {
	isolateAWS(t)
	setStaticCreds(t, testKeyID, testSecret, "")
	pki := newTestPKI(t)
	b := newIAMBroker(testRegion, 0)
	c := startTLSCluster(t, pki.serverTLS(false))
	b.install(c)
	b.allow(testKeyID, testSecret, "")
	cfg := authConfig(t, c, iamEnv(pki))

	cp := newCapture()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	prod := authClient(t, cfg.Kafka, m, cp)
	produce(t, kfakeNames, prod, 100, nil)
	cons := authClient(t, cfg.Kafka, m, cp, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	consumeAll(t, cons, 100, 20*time.Second)

	ok, fail := b.counts()
	if ok == 0 || fail != 0 {
		t.Fatalf("broker saw %d good and %d bad tokens, want some good and no bad (last error: %v)", ok, fail, b.lastErr)
	}
	if got := testutil.ToFloat64(m.KafkaAuth.WithLabelValues("iam", metrics.AuthKindAuthenticate, metrics.OutcomeOK)); got != float64(ok) {
		t.Errorf("got consumer_kafka_auth_total{kind=authenticate,outcome=ok} %v, want %d (the broker's count)", got, ok)
	}
	if got := testutil.ToFloat64(m.KafkaAuth.WithLabelValues("iam", metrics.AuthKindAuthenticate, metrics.OutcomeError)); got != 0 {
		t.Errorf("got %v failed authentications, want 0", got)
	}
	prod.Close()
	cons.Close()
	b.mu.Lock()
	secrets := append([]string{testSecret}, b.seen...)
	b.mu.Unlock()
	cp.assertNoSecrets(t, secrets...)
}

// TestIAMReauthenticatesWhileConsuming: the broker grants sessions of two
// seconds; while records are produced and consumed for several seconds, the
// client re-authenticates its live connections (KIP-368) each time, with a
// fresh token, and no record is lost or delayed past the test's patience.
func TestIAMReauthenticatesWhileConsuming(t *testing.T) {
	isolateAWS(t)
	setStaticCreds(t, testKeyID, testSecret, "")
	pki := newTestPKI(t)
	b := newIAMBroker(testRegion, 2*time.Second)
	c := startTLSCluster(t, pki.serverTLS(false))
	b.install(c)
	b.allow(testKeyID, testSecret, "")
	cfg := authConfig(t, c, iamEnv(pki))

	cp := newCapture()
	m := metrics.New(prometheus.NewRegistry())
	prod := authClient(t, cfg.Kafka, m, cp)
	cons := authClient(t, cfg.Kafka, m, cp, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))

	var produced atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, `{"n":%d}`, i)}).FirstErr()
			cancel()
			if err != nil {
				t.Errorf("produce %d: %v", i, err)
				return
			}
			produced.Add(1)
		}
	}()

	seen := map[[2]int64]bool{}
	var longest time.Duration
	last := time.Now()
	end := time.Now().Add(7 * time.Second)
	for time.Now().Before(end) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		fs := cons.PollFetches(ctx)
		cancel()
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch error: %v", err)
			}
		})
		if n := fs.NumRecords(); n > 0 {
			longest = max(longest, time.Since(last))
			last = time.Now()
		}
		fs.EachRecord(func(r *kgo.Record) { seen[[2]int64{int64(r.Partition), r.Offset}] = true })
	}
	close(stop)
	<-done
	want := int(produced.Load())
	consumeRest := func() bool { return len(seen) >= want }
	deadline := time.Now().Add(10 * time.Second)
	for !consumeRest() && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen[[2]int64{int64(r.Partition), r.Offset}] = true })
		cancel()
	}
	if len(seen) != want || want < 50 {
		t.Fatalf("consumed %d distinct records, produced %d (want equal, and at least 50)", len(seen), want)
	}
	if longest > 2500*time.Millisecond {
		t.Errorf("consuming stalled for %v while re-authenticating", longest)
	}
	reauths := testutil.ToFloat64(m.KafkaAuth.WithLabelValues("iam", metrics.AuthKindReauthenticate, metrics.OutcomeOK))
	if reauths < 4 {
		t.Errorf("got %v re-authentications in 7s with 2s sessions, want several", reauths)
	}
	if failed := testutil.ToFloat64(m.KafkaAuth.WithLabelValues("iam", metrics.AuthKindReauthenticate, metrics.OutcomeError)) +
		testutil.ToFloat64(m.KafkaAuth.WithLabelValues("iam", metrics.AuthKindAuthenticate, metrics.OutcomeError)); failed != 0 {
		t.Errorf("got %v failed authentications, want 0", failed)
	}
	if got := testutil.ToFloat64(m.KafkaAuthSessionLifetime.WithLabelValues("iam")); got != 2 {
		t.Errorf("got session lifetime %vs, want 2s", got)
	}
	b.mu.Lock()
	tokens := len(b.seen)
	distinct := map[string]bool{}
	for _, s := range b.seen {
		distinct[s] = true
	}
	secrets := append([]string{testSecret}, b.seen...)
	b.mu.Unlock()
	if tokens < 2 {
		t.Fatalf("broker saw %d tokens", tokens)
	}
	// Tokens are signed to the second: a fresh token per session means
	// at least as many distinct tokens as seconds of the run, roughly.
	if len(distinct) < 4 {
		t.Errorf("got %d distinct tokens over %d sessions, want fresh tokens", len(distinct), tokens)
	}
	prod.Close()
	cons.Close()
	cp.assertNoSecrets(t, secrets...)
}

// newTestConsumer builds the whole consumer (New) with the discard
// handler, logging to cp.
func newTestConsumer(t *testing.T, cfg config.Config, cp *capture) *Consumer {
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
		Logger: cp.log, Metrics: metrics.New(prometheus.NewRegistry()),
		Health: health.New(cfg.Ops.UnreadyAfter, time.Minute, time.Now),
		Opts:   []kgo.Opt{cp.kgoLogger()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runConsumer runs the whole consumer and returns Run's error, or fails
// the test if Run has not returned on its own within timeout.
func runConsumer(t *testing.T, cfg config.Config, cp *capture, timeout time.Duration) error {
	t.Helper()
	c := newTestConsumer(t, cfg, cp)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := c.Run(ctx)
	if ctx.Err() != nil {
		t.Fatalf("Run did not stop on its own within %v (returned %v)", timeout, err)
	}
	cp.addErr(err)
	return err
}

// TestIAMWrongSecretIsFatal: a token signed with the wrong secret is refused
// by the broker; the consumer does not retry forever but stops with a
// FatalError (exit 1) that says what failed, as whom, and what to check,
// and prints no secret.
func TestIAMWrongSecretIsFatal(t *testing.T) {
	isolateAWS(t)
	setStaticCreds(t, testKeyID, testBadSecret, "")
	pki := newTestPKI(t)
	b := newIAMBroker(testRegion, 0)
	c := startTLSCluster(t, pki.serverTLS(false))
	b.install(c)
	b.allow(testKeyID, testSecret, "")
	cfg := authConfig(t, c, iamEnv(pki))

	cp := newCapture()
	err := runConsumer(t, cfg, cp, 30*time.Second)
	var fe *FatalError
	if !errors.As(err, &fe) || !IsFatal(err) {
		t.Fatalf("got %v, want a fatal *FatalError", err)
	}
	var ae *AuthError
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
	b.mu.Lock()
	secrets := append([]string{testSecret, testBadSecret}, b.seen...)
	b.mu.Unlock()
	cp.assertNoSecrets(t, secrets...)
}

// fakeSTS answers AssumeRole like STS: with temporary credentials, or with
// the error code deny names.
type fakeSTS struct {
	srv      *httptest.Server
	mu       sync.Mutex
	calls    int
	sessions []string // RoleSessionName of each call
	roles    []string
	deny     string
}

const (
	stsKeyID   = "ASIATEMPKEY00000ROLE"
	stsSecret  = "temporarySecretForTheAssumedRole0000000000"
	stsSession = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN//////////wEaDTESTONLY"
)

func newFakeSTS(t *testing.T) *fakeSTS {
	t.Helper()
	f := &fakeSTS{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.calls++
		f.sessions = append(f.sessions, r.Form.Get("RoleSessionName"))
		f.roles = append(f.roles, r.Form.Get("RoleArn"))
		deny := f.deny
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		if deny != "" {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>The security token included in the request is invalid.</Message></Error><RequestId>r1</RequestId></ErrorResponse>`, deny)
			return
		}
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/consumer/%s</Arn><AssumedRoleId>AROATEST:%s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></AssumeRoleResponse>`,
			stsKeyID, stsSecret, stsSession, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), r.Form.Get("RoleSessionName"), r.Form.Get("RoleSessionName"))
	}))
	t.Cleanup(f.srv.Close)
	t.Setenv("AWS_ENDPOINT_URL_STS", f.srv.URL)
	return f
}

const testRoleARN = "arn:aws:iam::123456789012:role/consumer"

// TestIAMAssumeRole: with KAFKA_IAM_ROLE_ARN the client assumes the role
// through STS with the fixed session name, signs tokens with the role's
// temporary credentials (session token included), and reuses the cached
// credentials for every connection rather than calling STS each time.
func TestIAMAssumeRole(t *testing.T) {
	for _, tc := range []struct {
		name, sessionName, want string
	}{
		{name: "default session name", want: config.DefaultIAMSessionName},
		{name: "KAFKA_IAM_SESSION_NAME", sessionName: "brands-sync-prod", want: "brands-sync-prod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolateAWS(t)
			setStaticCreds(t, testKeyID, testSecret, "")
			sts := newFakeSTS(t)
			pki := newTestPKI(t)
			b := newIAMBroker(testRegion, 0)
			c := startTLSCluster(t, pki.serverTLS(false))
			b.install(c)
			b.allow(stsKeyID, stsSecret, stsSession) // only the role's credentials
			env := iamEnv(pki)
			env["KAFKA_IAM_ROLE_ARN"] = testRoleARN
			if tc.sessionName != "" {
				env["KAFKA_IAM_SESSION_NAME"] = tc.sessionName
			}
			cfg := authConfig(t, c, env)
			cp := newCapture()
			prod := authClient(t, cfg.Kafka, nil, cp)
			produce(t, kfakeNames, prod, 20, nil)
			cons := authClient(t, cfg.Kafka, nil, cp, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			consumeAll(t, cons, 20, 20*time.Second)
			ok, fail := b.counts()
			if ok < 2 || fail != 0 {
				t.Fatalf("broker saw %d good and %d bad tokens, want at least 2 good (two clients) and no bad (last error: %v)", ok, fail, b.lastErr)
			}
			sts.mu.Lock()
			calls, sessions, roles := sts.calls, sts.sessions, sts.roles
			sts.mu.Unlock()
			// One call per client: each client has its own cache.
			if calls != 2 {
				t.Errorf("got %d AssumeRole calls for %d authentications, want 2 (one per client; cached after)", calls, ok)
			}
			for i := range sessions {
				if sessions[i] != tc.want || roles[i] != testRoleARN {
					t.Errorf("got AssumeRole(%s, %s), want (%s, %s)", roles[i], sessions[i], testRoleARN, tc.want)
				}
			}
			prod.Close()
			cons.Close()
			b.mu.Lock()
			secrets := append([]string{testSecret, stsSecret, stsSession}, b.seen...)
			b.mu.Unlock()
			cp.assertNoSecrets(t, secrets...)
		})
	}
}

// TestIAMAssumeRoleDeniedIsFatal: when STS refuses the source credentials
// (InvalidClientTokenId), the consumer tries a few times and then stops
// with a FatalError naming the role, rather than retrying forever.
func TestIAMAssumeRoleDeniedIsFatal(t *testing.T) {
	isolateAWS(t)
	setStaticCreds(t, testKeyID, testBadSecret, "")
	sts := newFakeSTS(t)
	sts.deny = "InvalidClientTokenId"
	pki := newTestPKI(t)
	b := newIAMBroker(testRegion, 0)
	c := startTLSCluster(t, pki.serverTLS(false))
	b.install(c)
	env := iamEnv(pki)
	env["KAFKA_IAM_ROLE_ARN"] = testRoleARN
	cfg := authConfig(t, c, env)

	cp := newCapture()
	err := runConsumer(t, cfg, cp, 30*time.Second)
	t.Logf("the fatal line: %v", err)
	var ce *CredentialsError
	if !errors.As(err, &ce) || !IsFatal(err) {
		t.Fatalf("got %v, want a fatal *CredentialsError", err)
	}
	if ce.Failures != iamGiveUpAfterTries {
		t.Errorf("gave up after %d failures, want %d", ce.Failures, iamGiveUpAfterTries)
	}
	msg := err.Error()
	for _, want := range []string{testRoleARN, "InvalidClientTokenId", "KAFKA_IAM_ROLE_ARN"} {
		if !strings.Contains(msg, want) {
			t.Errorf("got message %q, want it to mention %q", msg, want)
		}
	}
	if ok, fail := b.counts(); ok+fail != 0 {
		t.Errorf("the broker saw %d tokens, want none", ok+fail)
	}
	cp.assertNoSecrets(t, testBadSecret)
}

// TestIAMRevokedMidRunIsFatal: the consumer is running with sessions of two
// seconds when its access key stops being accepted (as when a key is
// deactivated or a role's policy loses kafka-cluster:Connect); the next
// re-authentication is refused, retried once on a new connection by the
// client, and then stops the consumer with a FatalError rather than a loop.
func TestIAMRevokedMidRunIsFatal(t *testing.T) {
	isolateAWS(t)
	setStaticCreds(t, testKeyID, testSecret, "")
	pki := newTestPKI(t)
	b := newIAMBroker(testRegion, 2*time.Second)
	c := startTLSCluster(t, pki.serverTLS(false))
	b.install(c)
	b.allow(testKeyID, testSecret, "")
	cfg := authConfig(t, c, iamEnv(pki))

	cp := newCapture()
	cons := newTestConsumer(t, cfg, cp)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx) }()
	waitFor(t, 20*time.Second, "the consumer to authenticate", func() bool { ok, _ := b.counts(); return ok >= 3 })
	time.Sleep(500 * time.Millisecond)
	b.mu.Lock()
	delete(b.secrets, testKeyID)
	b.mu.Unlock()
	select {
	case err := <-done:
		cp.addErr(err)
		t.Logf("the fatal line: %v", err)
		var ae *AuthError
		if !errors.As(err, &ae) || !IsFatal(err) {
			t.Fatalf("got %v, want a fatal *AuthError", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the consumer did not stop within 30s of its key being revoked")
	}
	b.mu.Lock()
	secrets := append([]string{testSecret}, b.seen...)
	b.mu.Unlock()
	cp.assertNoSecrets(t, secrets...)
}
