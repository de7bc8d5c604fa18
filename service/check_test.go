package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/internal/dlq"
)

// opsCluster is a kfake cluster with the topic orders (3 partitions) and
// orders.dlq (2), and the environment of a service consuming it as group
// orders-svc.
type opsCluster struct {
	kf  *kfake.Cluster
	cl  *kgo.Client
	adm *kadm.Client
	env map[string]string
}

func startOpsCluster(t *testing.T, extra ...string) *opsCluster {
	t.Helper()
	kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders"), kfake.SeedTopics(2, "orders.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kf.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(kf.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	env := map[string]string{
		"KAFKA_BROKERS": strings.Join(kf.ListenAddrs(), ","), "KAFKA_TOPICS": "orders", "KAFKA_GROUP_ID": "orders-svc",
		"KAFKA_AUTH": "none", "LOG_LEVEL": "warn",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return &opsCluster{kf: kf, cl: cl, adm: kadm.NewClient(cl), env: env}
}

func (c *opsCluster) lookup(k string) (string, bool) {
	v, ok := c.env[k]
	return v, ok
}

// run runs a command against the cluster and returns its exit code and
// output.
func (c *opsCluster) run(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, c.lookup, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func (c *opsCluster) produce(t *testing.T, rs ...*kgo.Record) {
	t.Helper()
	if err := c.cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// deadLetter writes the dead-letter copy of a record of orders.
func (c *opsCluster) deadLetter(t *testing.T, key string, part int32, kind dlq.Kind, group string, at time.Time) {
	t.Helper()
	src := &kgo.Record{Topic: "orders", Partition: part, Key: []byte(key), Value: []byte("value of " + key),
		Headers: []kgo.RecordHeader{{Key: "trace-id", Value: []byte("t-" + key)}}}
	r := dlq.Build("orders.dlq", group, dlq.Failure{Record: src, Kind: kind, Err: errors.New("boom")}, at)
	c.produce(t, r)
}

func TestCheckCommand(t *testing.T) {
	c := startOpsCluster(t)
	code, out, errOut := c.run("check", "--timeout", "3s")
	if code != exitOK {
		t.Fatalf("got exit %d, want 0:\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"✓ brokers", "✓ topic orders: exists, 3 partitions", "✓ dead-letter topic orders.dlq", "✓ group orders-svc", "all 5 checks passed"} {
		if !strings.Contains(out, want) {
			t.Errorf("got\n%s\nwant a line with %q", out, want)
		}
	}

	c.env["DLQ_TOPIC"] = "missing.dlq"
	code, out, _ = c.run("check", "--timeout", "3s")
	if code != exitRuntime || !strings.Contains(out, "✗ dead-letter topic missing.dlq: does not exist") {
		t.Errorf("got exit %d and\n%s\nwant 1 naming the missing dead-letter topic", code, out)
	}

	// --output json: one document, the same exit code.
	code, out, errOut = c.run("check", "--timeout", "3s", "--output", "json")
	var doc struct {
		Passed bool `json:"passed"`
		Failed int  `json:"failed"`
		Checks []struct {
			Check  string `json:"check"`
			Status string `json:"status"`
			Detail string `json:"detail"`
			Fix    string `json:"fix"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &doc); code != exitRuntime || err != nil {
		t.Fatalf("--output json: got exit %d, %v:\n%s%s", code, err, out, errOut)
	}
	if doc.Passed || doc.Failed != 1 || len(doc.Checks) != 5 || doc.Checks[0].Status != "pass" {
		t.Errorf("--output json: got %+v", doc)
	}
	for _, ch := range doc.Checks {
		if ch.Check == "dead-letter topic missing.dlq" && (ch.Status != "fail" || ch.Detail != "does not exist" || ch.Fix == "") {
			t.Errorf("--output json: got %+v for the missing dead-letter topic", ch)
		}
	}
}

func TestOpsCommandsRefuseBadInput(t *testing.T) {
	c := startOpsCluster(t)
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"check", "--no-such-flag"}, want: "flag provided but not defined"},
		{args: []string{"check"}, env: map[string]string{"KAFKA_BROKERS": ""}, want: "KAFKA_BROKERS"},
		{args: []string{"redrive", "--kind", "decoded"}, want: `--kind "decoded": expected decode, handler, validation, expired or delivery-limit`},
		{args: []string{"redrive", "--since", "yesterday"}, want: "--since: \"yesterday\": expected an RFC 3339 time"},
		{args: []string{"redrive", "--max-redrives", "0"}, want: "--max-redrives: expected a number >= 1"},
		{args: []string{"redrive", "extra"}, want: `unexpected argument "extra"`},
		{args: []string{"offsets", "reset"}, want: "--to is required"},
		{args: []string{"offsets", "reset", "--to", "soon"}, want: `--to "soon": expected earliest, latest`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			saved := map[string]string{}
			for k, v := range tc.env {
				saved[k] = c.env[k]
				c.env[k] = v
			}
			defer func() {
				for k, v := range saved {
					c.env[k] = v
				}
			}()
			code, out, errOut := c.run(tc.args...)
			if code != exitConfig || !strings.Contains(errOut, tc.want) {
				t.Errorf("got exit %d and\n%s%s\nwant 2 with %q", code, out, errOut, tc.want)
			}
		})
	}
}

func TestHelpListsOpsCommands(t *testing.T) {
	code, out, _ := (&opsCluster{env: map[string]string{}}).run("help")
	if code != exitOK {
		t.Fatalf("got exit %d, want 0", code)
	}
	for _, want := range []string{"check ", "redrive ", "--max-redrives 3", "--dry-run", "offsets ", "offsets reset --to earliest|latest|<RFC 3339 time>|<offset>", "--yes"} {
		if !strings.Contains(out, want) {
			t.Errorf("got help\n%s\nwant %q in it", out, want)
		}
	}
}
