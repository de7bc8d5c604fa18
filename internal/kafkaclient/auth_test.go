package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/kafkaclient/kafkaclienttest"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

// TestIAMAuthenticatesAndConsumes: with static credentials from the
// environment, the client signs an MSK IAM token that the broker verifies
// (SigV4 recomputed from the known secret), then produces and consumes over
// TLS; authentications are counted, and no secret is printed.
func TestIAMAuthenticatesAndConsumes(t *testing.T) {
	kafkaclienttest.IsolateAWS(t)
	kafkaclienttest.SetStaticCreds(t, testKeyID, testSecret, "")
	pki := kafkaclienttest.NewPKI(t)
	b := kafkaclienttest.NewIAMBroker(testRegion, 0)
	c := kafkaclienttest.StartCluster(t, pki.ServerTLS(false), topic, dlqTopic)
	b.Install(c)
	b.Allow(testKeyID, testSecret, "")
	cfg := authConfig(t, c, iamEnv(pki))

	cp := kafkaclienttest.NewCapture()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	prod := authClient(t, cfg.Kafka, m, cp)
	produce(t, prod, 100)
	cons := authClient(t, cfg.Kafka, m, cp, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	consumeAll(t, cons, 100, 20*time.Second)

	ok, fail := b.Counts()
	if ok == 0 || fail != 0 {
		t.Fatalf("broker saw %d good and %d bad tokens, want some good and no bad (last error: %v)", ok, fail, b.LastErr())
	}
	if got := testutil.ToFloat64(m.KafkaAuth.WithLabelValues("iam", metrics.AuthKindAuthenticate, metrics.OutcomeOK)); got != float64(ok) {
		t.Errorf("got consumer_kafka_auth_total{kind=authenticate,outcome=ok} %v, want %d (the broker's count)", got, ok)
	}
	if got := testutil.ToFloat64(m.KafkaAuth.WithLabelValues("iam", metrics.AuthKindAuthenticate, metrics.OutcomeError)); got != 0 {
		t.Errorf("got %v failed authentications, want 0", got)
	}
	prod.Close()
	cons.Close()
	secrets := append([]string{testSecret}, b.Tokens()...)
	cp.AssertNoSecrets(t, secrets...)
}

// TestIAMReauthenticatesWhileConsuming: the broker grants sessions of two
// seconds; while records are produced and consumed for several seconds, the
// client re-authenticates its live connections (KIP-368) each time, with a
// fresh token, and no record is lost or delayed past the test's patience.
func TestIAMReauthenticatesWhileConsuming(t *testing.T) {
	kafkaclienttest.IsolateAWS(t)
	kafkaclienttest.SetStaticCreds(t, testKeyID, testSecret, "")
	pki := kafkaclienttest.NewPKI(t)
	b := kafkaclienttest.NewIAMBroker(testRegion, 2*time.Second)
	c := kafkaclienttest.StartCluster(t, pki.ServerTLS(false), topic, dlqTopic)
	b.Install(c)
	b.Allow(testKeyID, testSecret, "")
	cfg := authConfig(t, c, iamEnv(pki))

	cp := kafkaclienttest.NewCapture()
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
	sent := b.Tokens()
	tokens := len(sent)
	distinct := map[string]bool{}
	for _, s := range sent {
		distinct[s] = true
	}
	secrets := append([]string{testSecret}, sent...)
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
	cp.AssertNoSecrets(t, secrets...)
}

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
			kafkaclienttest.IsolateAWS(t)
			kafkaclienttest.SetStaticCreds(t, testKeyID, testSecret, "")
			sts := kafkaclienttest.NewSTS(t)
			pki := kafkaclienttest.NewPKI(t)
			b := kafkaclienttest.NewIAMBroker(testRegion, 0)
			c := kafkaclienttest.StartCluster(t, pki.ServerTLS(false), topic, dlqTopic)
			b.Install(c)
			b.Allow(stsKeyID, stsSecret, stsSession) // only the role's credentials
			env := iamEnv(pki)
			env["KAFKA_IAM_ROLE_ARN"] = testRoleARN
			if tc.sessionName != "" {
				env["KAFKA_IAM_SESSION_NAME"] = tc.sessionName
			}
			cfg := authConfig(t, c, env)
			cp := kafkaclienttest.NewCapture()
			prod := authClient(t, cfg.Kafka, nil, cp)
			produce(t, prod, 20)
			cons := authClient(t, cfg.Kafka, nil, cp, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			consumeAll(t, cons, 20, 20*time.Second)
			ok, fail := b.Counts()
			if ok < 2 || fail != 0 {
				t.Fatalf("broker saw %d good and %d bad tokens, want at least 2 good (two clients) and no bad (last error: %v)", ok, fail, b.LastErr())
			}
			roles, sessions := sts.Calls()
			calls := len(roles)
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
			secrets := append([]string{testSecret, stsSecret, stsSession}, b.Tokens()...)
			cp.AssertNoSecrets(t, secrets...)
		})
	}
}
