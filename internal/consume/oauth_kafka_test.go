package consume

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/kafkaclient"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

// unsecuredJWT is a token Apache Kafka's built-in unsecured OAUTHBEARER
// validator accepts: an unsigned JWT with sub, iat and exp.
func unsecuredJWT(sub string, ttl time.Duration) string {
	enc := base64.RawURLEncoding
	now := time.Now()
	header := enc.EncodeToString([]byte(`{"alg":"none"}`))
	claims := enc.EncodeToString(fmt.Appendf(nil, `{"sub":%q,"iat":%d,"exp":%d}`, sub, now.Unix(), now.Add(ttl).Unix()))
	return header + "." + claims + "."
}

// TestOAuthBearerRealKafka runs the service's consumer over Apache Kafka's
// own OAUTHBEARER implementation (KAFKA_TEST_SASL_BROKERS, a listener with
// Kafka's unsecured JWT validator and 3s sessions: see scripts/kafka/up.sh).
// It is the path MSK IAM takes, the OAUTHBEARER mechanism and the tap that
// counts authentications, with a JWT instead of a presigned URL (which only
// MSK validates): a fresh token per session, re-authentication while
// consuming, nothing lost.
func TestOAuthBearerRealKafka(t *testing.T) {
	seeds := os.Getenv("KAFKA_TEST_SASL_BROKERS")
	plainSeeds := os.Getenv("KAFKA_TEST_BROKERS")
	if seeds == "" || plainSeeds == "" {
		t.Skip("needs the real broker: KAFKA_TEST_BROKERS and KAFKA_TEST_SASL_BROKERS (make test-kafka sets them)")
	}
	c := realCluster(t, strings.Split(plainSeeds, ","), 3, true)
	cl := newClient(t, c)
	cfg := c.config(t, map[string]string{"KAFKA_BROKERS": seeds})

	var tokens atomic.Int64
	provider := func(context.Context) (oauth.Auth, error) {
		tokens.Add(1)
		return oauth.Auth{Token: unsecuredJWT("msk-consumer-test", time.Hour)}, nil
	}
	var log sharedLog
	m := startWithMetrics(t, cfg, log.recorder("a"), func(mt *metrics.Metrics) []kgo.Opt {
		k := cfg.Kafka
		k.Auth = config.AuthIAM // counted under the mechanism MSK IAM uses
		opts, err := kafkaclient.Options(k, kafkaclient.Deps{Metrics: mt, SASL: oauth.Oauth(provider), Principal: "msk-consumer-test"})
		if err != nil {
			t.Fatal(err)
		}
		return opts
	})

	// Produce for longer than a few sessions while the consumer runs.
	all := produced{}
	end := time.Now().Add(8 * time.Second)
	for time.Now().Before(end) {
		for part, rs := range produce(t, c, cl, 100, nil) {
			all[part] = append(all[part], rs...)
		}
		time.Sleep(200 * time.Millisecond)
	}
	checkCommittedAtEnd(t, c, cl, all)
	checkAllDelivered(t, all, log.snapshot(), nil)

	ok := testutil.ToFloat64(m.metrics.KafkaAuth.WithLabelValues("iam", metrics.AuthKindAuthenticate, metrics.OutcomeOK))
	re := testutil.ToFloat64(m.metrics.KafkaAuth.WithLabelValues("iam", metrics.AuthKindReauthenticate, metrics.OutcomeOK))
	failed := testutil.ToFloat64(m.metrics.KafkaAuth.WithLabelValues("iam", metrics.AuthKindReauthenticate, metrics.OutcomeError))
	life := testutil.ToFloat64(m.metrics.KafkaAuthSessionLifetime.WithLabelValues("iam"))
	if ok < 1 || re < 2 || failed != 0 {
		t.Fatalf("authentications %v, re-authentications %v (failed %v); want at least 1 and 2, none failed", ok, re, failed)
	}
	if life <= 0 || life > 3 {
		t.Fatalf("session lifetime gauge: got %vs, want the broker's 3s", life)
	}
	if n := tokens.Load(); n < int64(ok+re) {
		t.Fatalf("tokens made: got %d for %v sessions, want a fresh one each", n, ok+re)
	}
	t.Logf("%d records over OAUTHBEARER; %v authentications, %v re-authentications", all.total(), ok, re)
}
