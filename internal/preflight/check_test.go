package preflight

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/msk-consumer/msk-consumer/config"
)

var seq atomic.Int64

// env is a cluster (kfake, or KAFKA_TEST_BROKERS) with a source topic and
// its dead-letter topic, and a configuration that passes every check.
type env struct {
	kf    *kfake.Cluster // nil on a real broker
	addrs []string
	adm   *kadm.Client
	cfg   config.Config
}

func setup(t *testing.T, dlqConfigs map[string]*string) *env {
	t.Helper()
	var addrs []string
	var kfc *kfake.Cluster
	if seeds := os.Getenv("KAFKA_TEST_BROKERS"); seeds != "" {
		addrs = strings.Split(seeds, ",")
	} else {
		kf, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(kf.Close)
		addrs, kfc = kf.ListenAddrs(), kf
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	name := regexp.MustCompile(`[^a-zA-Z0-9.-]+`).ReplaceAllString(t.Name(), "-") + "-" +
		strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + strconv.FormatInt(seq.Add(1), 36)
	ctx := context.Background()
	for topic, configs := range map[string]map[string]*string{name: nil, name + ".dlq": dlqConfigs} {
		if _, err := adm.CreateTopic(ctx, 2, 1, configs, topic); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), topic) })
	}
	// Creation is asynchronous on a real broker: wait until its metadata
	// has both topics (a fixed sleep was too short on a loaded machine).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		td, err := adm.ListTopics(ctx, name, name+".dlq")
		if err == nil && td.Has(name) && td.Has(name+".dlq") && td.Error() == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topics %s and %s.dlq not in the broker's metadata after 10s: %v", name, name, err)
		}
	}
	cfg, err := config.Load(func(k string) (string, bool) {
		v, ok := map[string]string{
			"KAFKA_BROKERS": strings.Join(addrs, ","), "KAFKA_TOPICS": name, "KAFKA_GROUP_ID": name,
			"KAFKA_AUTH": "none", "KAFKA_TLS": "false",
		}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{kf: kfc, addrs: addrs, adm: adm, cfg: cfg}
}

func (e *env) check(t *testing.T) []Result {
	t.Helper()
	return Check(context.Background(), e.cfg, Deps{Opts: []kgo.Opt{kgo.SeedBrokers(e.cfg.Kafka.Brokers...)}, Timeout: 3 * time.Second})
}

// line returns the result whose check starts with prefix.
func line(t *testing.T, rs []Result, prefix string) Result {
	t.Helper()
	for _, r := range rs {
		if strings.HasPrefix(r.Check, prefix) {
			return r
		}
	}
	t.Fatalf("no check %q in %v", prefix, rs)
	return Result{}
}

func output(rs []Result) string {
	var b strings.Builder
	Write(&b, rs)
	return b.String()
}

// registry serves /subjects as a Confluent registry does.
func registry(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/subjects" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`["orders-value"]`)) //nolint:errcheck // a test server
	}))
	t.Cleanup(s.Close)
	return s
}

// closedAddr is a local address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// probeHandler answers the contract's probe, a POST of an empty batch
// to /batch with the configured Authorization, with 204, and anything
// else with 400; it counts the probes.
func probeHandler(t *testing.T, probes *atomic.Int64) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Topic   string            `json:"topic"`
			Records []json.RawMessage `json:"records"`
		}
		err := json.NewDecoder(r.Body).Decode(&b)
		if r.Method != http.MethodPost || r.URL.Path != "/batch" || r.Header.Get("Content-Type") != "application/json" ||
			r.Header.Get("Authorization") != "Bearer probe-token" || err != nil || b.Records == nil || len(b.Records) != 0 || b.Topic == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		probes.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestCheckPasses(t *testing.T) {
	e := setup(t, nil)
	reg := registry(t)
	var probes atomic.Int64
	handler := probeHandler(t, &probes)
	e.cfg.Value.Registry, e.cfg.Registry.URL = config.RegistryConfluent, reg.URL
	e.cfg.Handler.Name, e.cfg.Handler.HTTPURL, e.cfg.Handler.HTTPAuth = config.HandlerHTTP, handler.URL+"/batch", "Bearer probe-token"
	if e.kf != nil {
		// A coordinator not available yet (the offsets topic being
		// created) is asked again.
		f := e.kf.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.FindCoordinator}, Err: kerr.CoordinatorNotAvailable, Count: 3})
		defer f.Remove()
	}
	rs := e.check(t)
	if !Passed(rs) {
		t.Fatalf("got failures, want every check passed:\n%s", output(rs))
	}
	out := output(rs)
	for _, want := range []string{
		"✓ brokers ", "✓ authentication (KAFKA_AUTH=none): none", "✓ topic " + e.cfg.Kafka.Topics[0] + ": exists, 2 partitions",
		"✓ dead-letter topic " + e.cfg.Kafka.Topics[0] + ".dlq: exists", "✓ group ", "✓ schema registry ",
		"✓ HTTP handler " + handler.URL + "/batch: answers the probe (a POST of an empty batch) with 204 No Content",
		"all 7 checks passed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("got\n%s\nwant a line with %q", out, want)
		}
	}
	if e.kf != nil && !strings.Contains(out, "reachable; 1 broker in cluster") {
		t.Errorf("got\n%s\nwant \"1 broker\"", out)
	}
	if probes.Load() != 1 {
		t.Errorf("the handler got %d probes, want 1", probes.Load())
	}
}

func TestCheckFails(t *testing.T) {
	compact := "compact"
	small := "1000"
	for _, tc := range []struct {
		name       string
		dlqConfigs map[string]*string
		change     func(t *testing.T, e *env)
		check      string // the failing check
		want       string // in its line
	}{
		{name: "missing topic", change: func(_ *testing.T, e *env) {
			e.cfg.DLQ.Topic = e.cfg.Kafka.Topics[0] + ".dlq"
			e.cfg.Kafka.Topics = append(e.cfg.Kafka.Topics, "no-such-topic")
		},
			check: "topic no-such-topic", want: "does not exist → create it, or fix KAFKA_TOPICS"},
		{name: "missing dead-letter topic", change: func(_ *testing.T, e *env) { e.cfg.DLQ.Topic = "no-such-dlq" },
			check: "dead-letter topic no-such-dlq", want: "does not exist → create it"},
		{name: "compacted dead-letter topic", dlqConfigs: map[string]*string{"cleanup.policy": &compact},
			check: "dead-letter topic", want: "cleanup.policy=compact (compacted"},
		{name: "dead-letter topic smaller than its source", dlqConfigs: map[string]*string{"max.message.bytes": &small},
			check: "dead-letter topic", want: "max.message.bytes 1000 is less than"},
		{name: "registry down", change: func(t *testing.T, e *env) {
			e.cfg.Value.Registry, e.cfg.Registry.URL = config.RegistryConfluent, "http://"+closedAddr(t)
		}, check: "schema registry", want: "connection refused"},
		{name: "registry refuses the credentials", change: func(t *testing.T, e *env) {
			s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) }))
			t.Cleanup(s.Close)
			e.cfg.Key.Registry, e.cfg.Registry.URL = config.RegistryConfluent, s.URL
		}, check: "schema registry", want: "401 Unauthorized → check SCHEMA_REGISTRY_USERNAME"},
		{name: "handler URL closed", change: func(t *testing.T, e *env) {
			e.cfg.Handler.Name, e.cfg.Handler.HTTPURL = config.HandlerHTTP, "http://"+closedAddr(t)+"/batch"
		}, check: "HTTP handler", want: "no connection to"},
		{name: "http:// to a TLS port", change: func(t *testing.T, e *env) {
			s := httptest.NewTLSServer(http.NotFoundHandler())
			t.Cleanup(s.Close)
			e.cfg.Handler.Name, e.cfg.Handler.HTTPURL = config.HandlerHTTP, strings.Replace(s.URL, "https://", "http://", 1)
		}, check: "HTTP handler", want: "speaks TLS, the URL says http:// → use https://"},
		{name: "https:// to a plain port", change: func(t *testing.T, e *env) {
			s := httptest.NewServer(http.NotFoundHandler())
			t.Cleanup(s.Close)
			e.cfg.Handler.Name, e.cfg.Handler.HTTPURL = config.HandlerHTTP, strings.Replace(s.URL, "http://", "https://", 1)
		}, check: "HTTP handler", want: "does not speak TLS, the URL says https://"},
		{name: "handler answers the probe with 404", change: func(t *testing.T, e *env) {
			s := httptest.NewServer(http.NotFoundHandler())
			t.Cleanup(s.Close)
			e.cfg.Handler.Name, e.cfg.Handler.HTTPURL = config.HandlerHTTP, s.URL+"/batch"
		}, check: "HTTP handler", want: "the probe (a POST of an empty batch) answered 404 Not Found → check HTTP_HANDLER_URL"},
		{name: "handler answers the probe with 503", change: func(t *testing.T, e *env) {
			s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
			t.Cleanup(s.Close)
			e.cfg.Handler.Name, e.cfg.Handler.HTTPURL = config.HandlerHTTP, s.URL+"/batch"
		}, check: "HTTP handler", want: "answered 503 Service Unavailable"},
		{name: "brokers unreachable", change: func(t *testing.T, e *env) { e.cfg.Kafka.Brokers = []string{closedAddr(t)} },
			check: "brokers", want: "not reached within 3s"},
		{name: "idempotency store unreachable", change: func(t *testing.T, e *env) {
			e.cfg.Idempotency.Store, e.cfg.Idempotency.RedisURL = config.StoreRedis, "redis://"+closedAddr(t)+"/0"
		}, check: "idempotency store redis", want: "connection refused → check REDIS_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, tc.dlqConfigs)
			if tc.change != nil {
				tc.change(t, e)
			}
			rs := e.check(t)
			if Passed(rs) {
				t.Fatalf("got every check passed, want %s failing:\n%s", tc.check, output(rs))
			}
			r := line(t, rs, tc.check)
			if r.Status != Fail || !strings.Contains(r.String(), tc.want) {
				t.Errorf("got %q, want ✗ with %q", r, tc.want)
			}
			for _, other := range rs {
				if other.Status == Fail && other.Check != r.Check {
					t.Errorf("got another failure %q, want only %s", other, tc.check)
				}
			}
		})
	}
}

// TestCheckTLSMismatch checks the hint for KAFKA_TLS=true against a
// plaintext listener.
func TestCheckTLSMismatch(t *testing.T) {
	e := setup(t, nil)
	e.cfg.Kafka.TLS = true
	tc, err := TLSConfigForTest(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	rs := Check(context.Background(), e.cfg, Deps{Opts: []kgo.Opt{kgo.SeedBrokers(e.addrs...), kgo.DialTLSConfig(tc)}, Timeout: 3 * time.Second})
	r := line(t, rs, "brokers")
	if r.Status != Fail || !strings.Contains(r.String(), "KAFKA_TLS=true against a plaintext listener") {
		t.Errorf("got %q, want the TLS mismatch named", r)
	}
}

// TestCheckStoreAnswers: a store that answers passes (a Redis speaking just
// enough RESP for HELLO and PING).
func TestCheckStoreAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go fakeRedis(c)
		}
	}()
	e := setup(t, nil)
	e.cfg.Idempotency.Store, e.cfg.Idempotency.RedisURL = config.StoreRedis, "redis://"+ln.Addr().String()+"/0"
	rs := e.check(t)
	if r := line(t, rs, "idempotency store redis"); r.Status != Pass {
		t.Fatalf("got %q, want ✓", r)
	}
}

// fakeRedis answers HELLO with an error (the client falls back to RESP2)
// and everything else with PONG or OK.
func fakeRedis(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if !strings.HasPrefix(line, "*") {
			continue
		}
		n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
		var args []string
		for range n {
			if _, err := r.ReadString('\n'); err != nil { // $len
				return
			}
			arg, err := r.ReadString('\n')
			if err != nil {
				return
			}
			args = append(args, strings.ToUpper(strings.TrimSpace(arg)))
		}
		switch {
		case len(args) > 0 && args[0] == "HELLO":
			c.Write([]byte("-ERR unknown command 'HELLO'\r\n")) //nolint:errcheck // a test server
		case len(args) > 0 && args[0] == "PING":
			c.Write([]byte("+PONG\r\n")) //nolint:errcheck // a test server
		default:
			c.Write([]byte("+OK\r\n")) //nolint:errcheck // a test server
		}
	}
}

// TestCheckProbesMSKBody: with HTTP_HANDLER_BODY=msk the probe is the MSK
// event without records, the shape a handler written for Lambda reads
// (a Powertools kafka_consumer handler would fail on the batch's list of
// records): eventSource, eventSourceArn with KAFKA_CLUSTER_ARN,
// bootstrapServers, and records an empty object.
func TestCheckProbesMSKBody(t *testing.T) {
	const arn = "arn:aws:kafka:eu-west-1:123456789012:cluster/orders/abcd-1"
	for _, tc := range []struct {
		name, arn, wantSource string
	}{
		{name: "MSK", arn: arn, wantSource: "aws:kafka"},
		{name: "self-managed", wantSource: "SelfManagedKafka"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, nil)
			var probes atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var ev map[string]json.RawMessage
				if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || r.Method != http.MethodPost {
					t.Errorf("probe: %v", err)
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				want := map[string]string{"eventSource": `"` + tc.wantSource + `"`, "records": "{}",
					"bootstrapServers": `"` + strings.Join(e.cfg.Kafka.Brokers, ",") + `"`}
				if tc.arn != "" {
					want["eventSourceArn"] = `"` + tc.arn + `"`
				}
				got := map[string]string{}
				for k, v := range ev {
					got[k] = string(v)
				}
				if !maps.Equal(got, want) {
					t.Errorf("got probe %v, want %v", got, want)
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				probes.Add(1)
				_, _ = w.Write([]byte(`{"batchItemFailures":[]}`))
			}))
			t.Cleanup(srv.Close)
			e.cfg.Handler.Name, e.cfg.Handler.HTTPURL = config.HandlerHTTP, srv.URL+"/events"
			e.cfg.Handler.HTTPBody, e.cfg.Handler.KafkaClusterARN = config.BodyMSK, tc.arn
			rs := e.check(t)
			r := line(t, rs, "HTTP handler")
			if want := "answers the probe (a POST of an MSK event without records) with 200 OK"; r.Status != Pass || r.Detail != want {
				t.Errorf("got %v %q, want pass %q", r.Status, r.Detail, want)
			}
			if probes.Load() != 1 {
				t.Errorf("the handler got %d probes, want 1", probes.Load())
			}
		})
	}
}
