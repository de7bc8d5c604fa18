package kafkaclient

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/internal/kafkaclient/kafkaclienttest"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

// TestSASLMechanisms: SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN over TLS
// against kfake's own SASL, with sessions of 1.5s so that the client also
// re-authenticates; both are counted, the granted lifetime is recorded, and
// the password is printed nowhere.
func TestSASLMechanisms(t *testing.T) {
	for _, tc := range []struct{ auth, method string }{
		{"scram-sha-256", "SCRAM-SHA-256"},
		{"scram-sha-512", "SCRAM-SHA-512"},
		{"plain", "PLAIN"},
	} {
		t.Run(tc.auth, func(t *testing.T) {
			pki := kafkaclienttest.NewPKI(t)
			c := kafkaclienttest.StartCluster(t, pki.ServerTLS(false), topic, dlqTopic, kfake.EnableSASL(), kfake.Superuser(tc.method, saslUser, saslPassword),
				kfake.BrokerConfigs(map[string]string{"connections.max.reauth.ms": "1500"}))
			cfg := authConfig(t, c, map[string]string{
				"KAFKA_AUTH":          tc.auth,
				"KAFKA_SASL_USERNAME": saslUser,
				"KAFKA_SASL_PASSWORD": saslPassword,
				"KAFKA_TLS_CA_FILE":   pki.CAFile,
			})
			cp := kafkaclienttest.NewCapture()
			m := metrics.New(prometheus.NewRegistry())
			prod := authClient(t, cfg.Kafka, m, cp)
			cons := authClient(t, cfg.Kafka, m, cp, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			produce(t, prod, 20)
			consumeAll(t, cons, 20, 20*time.Second)
			time.Sleep(1600 * time.Millisecond) // past the session lifetime
			produce(t, prod, 20)
			consumeAll(t, cons, 20, 20*time.Second) // the next 20

			count := func(kind, outcome string) float64 {
				return testutil.ToFloat64(m.KafkaAuth.WithLabelValues(tc.auth, kind, outcome))
			}
			if got := count(metrics.AuthKindAuthenticate, metrics.OutcomeOK); got < 2 {
				t.Errorf("got %v authentications, want at least 2 (two clients)", got)
			}
			if got := count(metrics.AuthKindReauthenticate, metrics.OutcomeOK); got < 1 {
				t.Errorf("got %v re-authentications, want at least 1", got)
			}
			if got := count(metrics.AuthKindAuthenticate, metrics.OutcomeError) + count(metrics.AuthKindReauthenticate, metrics.OutcomeError); got != 0 {
				t.Errorf("got %v failed authentications, want 0", got)
			}
			if got := testutil.ToFloat64(m.KafkaAuthSessionLifetime.WithLabelValues(tc.auth)); got != 1.5 {
				t.Errorf("got session lifetime %vs, want 1.5s", got)
			}
			prod.Close()
			cons.Close()
			cp.AssertNoSecrets(t, saslPassword)
		})
	}
}

// TestTLSVerification: the broker certificate is verified against
// KAFKA_TLS_CA_FILE with the broker's host as the name, or
// KAFKA_TLS_SERVER_NAME; KAFKA_TLS_INSECURE_SKIP_VERIFY skips it; and a
// listener that requires client certificates accepts KAFKA_TLS_CERT_FILE /
// KAFKA_TLS_KEY_FILE and nothing less. Over SASL (the service's own dialer)
// and without (kgo's).
func TestTLSVerification(t *testing.T) {
	pki := kafkaclienttest.NewPKI(t)
	for _, tc := range []struct {
		name   string
		mtls   bool
		sasl   bool
		host   string // "localhost" instead of 127.0.0.1
		env    map[string]string
		wantOK bool
	}{
		{name: "CA file, IP address", sasl: true, env: map[string]string{"KAFKA_TLS_CA_FILE": pki.CAFile}, wantOK: true},
		{name: "CA file, host name", sasl: true, host: "localhost", env: map[string]string{"KAFKA_TLS_CA_FILE": pki.CAFile}, wantOK: true},
		{name: "server name override", sasl: true, env: map[string]string{"KAFKA_TLS_CA_FILE": pki.CAFile, "KAFKA_TLS_SERVER_NAME": "broker.test"}, wantOK: true},
		{name: "wrong server name", sasl: true, env: map[string]string{"KAFKA_TLS_CA_FILE": pki.CAFile, "KAFKA_TLS_SERVER_NAME": "wrong.test"}},
		{name: "system roots do not know the test CA", sasl: true},
		{name: "insecure skip verify", sasl: true, env: map[string]string{"KAFKA_TLS_INSECURE_SKIP_VERIFY": "true"}, wantOK: true},
		{name: "mTLS with a client certificate", mtls: true, env: map[string]string{"KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": pki.CAFile, "KAFKA_TLS_CERT_FILE": pki.CertFile, "KAFKA_TLS_KEY_FILE": pki.KeyFile}, wantOK: true},
		{name: "mTLS and SCRAM", mtls: true, sasl: true, env: map[string]string{"KAFKA_TLS_CA_FILE": pki.CAFile, "KAFKA_TLS_CERT_FILE": pki.CertFile, "KAFKA_TLS_KEY_FILE": pki.KeyFile}, wantOK: true},
		{name: "mTLS without a client certificate", mtls: true, env: map[string]string{"KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": pki.CAFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []kfake.Opt{}
			env := map[string]string{"KAFKA_AUTH": "none"}
			if tc.sasl {
				opts = append(opts, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", saslUser, saslPassword))
				env = map[string]string{"KAFKA_AUTH": "scram-sha-512", "KAFKA_SASL_USERNAME": saslUser, "KAFKA_SASL_PASSWORD": saslPassword}
			}
			c := kafkaclienttest.StartCluster(t, pki.ServerTLS(tc.mtls), topic, dlqTopic, opts...)
			for k, v := range tc.env {
				env[k] = v
			}
			if tc.host != "" {
				env["KAFKA_BROKERS"] = strings.Replace(c.ListenAddrs()[0], "127.0.0.1", tc.host, 1)
			}
			cfg := authConfig(t, c, env)
			cp := kafkaclienttest.NewCapture()
			cl := authClient(t, cfg.Kafka, nil, cp)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(`{}`)}).FirstErr()
			if tc.wantOK && err != nil {
				t.Fatalf("got %v, want the record produced", err)
			}
			if !tc.wantOK && err == nil {
				t.Fatal("the record was produced, want the connection refused")
			}
		})
	}
}
