package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/msk-consumer/msk-consumer/internal/kafkaclient/kafkaclienttest"
)

// TestIAMWithoutCredentialsFailsAtOnce: with KAFKA_AUTH=iam and no source
// of AWS credentials, `consumer run` exits 1 on its own, long before
// STARTUP_TIMEOUT, naming the credential chain rather than saying it is
// still reaching the brokers; `consumer check` fails the authentication
// line the same way.
func TestIAMWithoutCredentialsFailsAtOnce(t *testing.T) {
	kafkaclienttest.IsolateAWS(t)
	pki := kafkaclienttest.NewPKI(t)
	b := kafkaclienttest.NewIAMBroker(kafkaclienttest.Region, 0)
	kc := kafkaclienttest.StartCluster(t, pki.ServerTLS(false), "orders", "orders.dlq")
	b.Install(kc)
	env := map[string]string{
		"KAFKA_BROKERS": strings.Join(kc.ListenAddrs(), ","), "KAFKA_TOPICS": "orders", "KAFKA_GROUP_ID": "orders-svc",
		"KAFKA_AUTH": "iam", "AWS_REGION": kafkaclienttest.Region, "KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": pki.CAFile,
		"STARTUP_TIMEOUT": "10m", "HANDLER": "log", "LOG_LEVEL": "info", "METRICS_ADDR": "127.0.0.1:0",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var logs syncBuffer
	code := Run(ctx, Env{Args: []string{"run"}, Lookup: lookup, Stdout: &logs, Stderr: &logs}, testHandlers)
	if ctx.Err() != nil {
		t.Fatalf("run did not exit on its own within a minute (STARTUP_TIMEOUT is 10m):\n%s", logs.String())
	}
	out := logs.String()
	if code != exitRuntime || !strings.Contains(out, "no credentials") || !strings.Contains(out, "AWS_WEB_IDENTITY_TOKEN_FILE") || strings.Contains(out, "reaching the brokers") {
		t.Errorf("run: got exit %d and\n%s\nwant 1 naming the credential chain", code, out)
	}

	var stdout, stderr syncBuffer
	code = Run(context.Background(), Env{Args: []string{"check", "--timeout", "30s"}, Lookup: lookup, Stdout: &stdout, Stderr: &stderr}, testHandlers)
	if code != exitRuntime || !strings.Contains(stdout.String(), "✗ authentication (KAFKA_AUTH=iam): ") || !strings.Contains(stdout.String(), "no credentials") {
		t.Errorf("check: got exit %d and\n%s%s\nwant the authentication line failed naming the credential chain", code, stdout.String(), stderr.String())
	}
}
