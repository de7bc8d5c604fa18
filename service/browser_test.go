//go:build browsertest

package service_test

// The browser tier (make test-browser): the status page of a service
// under load, with one partition stuck on its handler and a few dead
// letters, loaded in Debian's chromium in headless mode; its DOM is checked
// for the stuck lane, its reason and the dead letters, and a screenshot is
// written to BROWSER_TEST_SCREENSHOT (docs/status.png).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/internal/status"
	"github.com/msk-consumer/msk-consumer/service"
)

func chromium(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("BROWSER_TEST_CHROMIUM")
	if bin == "" {
		bin = "chromium"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		t.Fatalf("the browser tier needs chromium (apt-get install -y chromium, or BROWSER_TEST_CHROMIUM): %v", err)
	}
	return path
}

// headless runs chromium in headless mode on u with args (--dump-dom,
// --screenshot=...) and returns its stdout.
func headless(t *testing.T, bin, u string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--hide-scrollbars", "--user-data-dir=" + t.TempDir()}, args...)
	cmd := exec.CommandContext(ctx, bin, append(all, u)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\nstderr:\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestStatusPageInBrowser: partition 0's handler never answers within
// HTTP_HANDLER_TIMEOUT (the handler is unavailable for it, retried without
// end), partitions 1 and 2 flow under load; 3 undecodable records and 2
// the handler rejects are dead-lettered.
func TestStatusPageInBrowser(t *testing.T) {
	bin := chromium(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders"), kfake.SeedTopics(1, "orders.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()

	var handled atomic.Int64
	hd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Partition int32 `json:"partition"`
			Records   []struct {
				Offset int64           `json:"offset"`
				Value  json.RawMessage `json:"value"`
			} `json:"records"`
		}
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if b.Partition == 0 && len(b.Records) > 0 {
			<-r.Context().Done() // stuck: the call times out
			return
		}
		var failures []string
		for _, rec := range b.Records {
			if bytes.Contains(rec.Value, []byte(`"reject":true`)) {
				failures = append(failures, fmt.Sprintf(`{"itemIdentifier":"%d"}`, rec.Offset))
			}
		}
		handled.Add(int64(len(b.Records) - len(failures)))
		fmt.Fprintf(w, `{"batchItemFailures":[%s]}`, strings.Join(failures, ","))
	}))
	defer hd.Close()

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("orders"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	metricsAddr := freeAddr(t)
	env := map[string]string{
		"KAFKA_BROKERS":            strings.Join(cluster.ListenAddrs(), ","),
		"KAFKA_TOPICS":             "orders",
		"KAFKA_GROUP_ID":           "orders-status",
		"KAFKA_AUTH":               "none",
		"KAFKA_COMMIT_INTERVAL":    "200ms",
		"BATCH_MAX_WAIT":           "50ms",
		"BATCH_MAX_RECORDS":        "50",
		"VALUE_FORMAT":             "json",
		"HANDLER":                  "http",
		"HTTP_HANDLER_URL":         hd.URL,
		"HTTP_HANDLER_AUTH_HEADER": "Bearer s3cr3t-t0ken",
		"HTTP_HANDLER_TIMEOUT":     "2s",
		"HANDLER_MAX_ATTEMPTS":     "1",
		"HANDLER_RETRY_BACKOFF":    "20ms",
		"UNREADY_AFTER":            "3s",
		"METRICS_ADDR":             metricsAddr,
		"LOG_LEVEL":                "error",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exit := make(chan int, 1)
	go func() {
		exit <- service.Run(ctx, service.Env{
			Args:   []string{"run"},
			Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
			Stdout: io.Discard, Stderr: io.Discard,
		}, nil)
	}()
	defer func() {
		cancel()
		select {
		case <-exit:
		case <-time.After(40 * time.Second):
			t.Error("the service did not stop")
		}
	}()

	// Load: 3 partitions, 20 records every 50ms each, the first of them
	// the dead letters' sources (never their keys or values on the page).
	n := 0
	rec := func(part int32, value string) *kgo.Record {
		n++
		return &kgo.Record{Partition: part, Key: fmt.Appendf(nil, "customer-%d", n), Value: []byte(value)}
	}
	first := []*kgo.Record{
		rec(1, `{"id":"secret-1",`), rec(2, `{"id":"secret-2",`), rec(1, `not json secret-3`),
		rec(2, `{"id":"secret-4","reject":true}`), rec(1, `{"id":"secret-5","reject":true}`),
	}
	if err := cl.ProduceSync(ctx, first...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var recs []*kgo.Record
			for p := range int32(3) {
				for range 20 {
					recs = append(recs, rec(p, fmt.Sprintf(`{"amount":%d}`, n)))
				}
			}
			if cl.ProduceSync(ctx, recs...).FirstErr() != nil {
				return
			}
		}
	}()
	defer func() { cancel(); <-loadDone }()

	// Until partition 0's lane is stalled past UNREADY_AFTER, the five
	// dead letters are in, and the charts have samples (every 5s).
	var v status.View
	deadline := time.Now().Add(90 * time.Second)
	for {
		v = status.View{}
		if resp, err := http.Get("http://" + metricsAddr + "/status.json"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
		}
		stalled := false
		for _, s := range v.Stalls {
			stalled = stalled || (s.Key == "orders/0" && s.Unready)
		}
		if stalled && len(v.DeadLetters) == 5 && len(v.History.Samples) >= 6 && handled.Load() > 1000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the status page never showed orders/0 stalled, 5 dead letters and 6 samples: %+v", v)
		}
		time.Sleep(200 * time.Millisecond)
	}

	page := "http://" + metricsAddr + "/status"
	dom := headless(t, bin, page, "--dump-dom")
	checkDOM(t, dom)

	// The same page behind a path prefix (an ingress, a proxy).
	target, _ := url.Parse("http://" + metricsAddr)
	proxy := httptest.NewServer(http.StripPrefix("/ops/consumer", httputil.NewSingleHostReverseProxy(target)))
	defer proxy.Close()
	checkDOM(t, headless(t, bin, proxy.URL+"/ops/consumer/status", "--dump-dom"))

	shot := os.Getenv("BROWSER_TEST_SCREENSHOT")
	if shot == "" {
		shot = t.TempDir() + "/status.png"
	}
	headless(t, bin, page, "--screenshot="+shot, "--window-size=1400,1100")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.DecodeConfig(f)
	if err != nil || img.Width != 1400 || img.Height != 1100 {
		t.Fatalf("screenshot %s: %+v %v, want a 1400x1100 PNG", shot, img, err)
	}
	t.Logf("screenshot: %s", shot)
}

// checkDOM checks the page as chromium rendered it.
func checkDOM(t *testing.T, dom string) {
	t.Helper()
	stuck := regexp.MustCompile(`(?s)<tr class="lane stuck" data-lane="orders/0">(.*?)</tr>`).FindStringSubmatch(dom)
	if stuck == nil {
		t.Fatalf("no stuck row for lane orders/0 in the DOM:\n%s", dom)
	}
	for _, want := range []string{"handler http unavailable", "records, offsets"} {
		if !strings.Contains(stuck[1], want) {
			t.Errorf("lane orders/0's row lacks %q: %s", want, stuck[1])
		}
	}
	for _, lane := range []string{"orders/1", "orders/2"} {
		if !strings.Contains(dom, `<tr class="lane" data-lane="`+lane+`">`) {
			t.Errorf("lane %s is not shown flowing", lane)
		}
	}
	stalls := regexp.MustCompile(`(?s)<table id="stalls">(.*?)</table>`).FindStringSubmatch(dom)
	if stalls == nil || !strings.Contains(stalls[1], "orders/0") || !strings.Contains(stalls[1], "handler http unavailable") {
		t.Errorf("the stalls table does not name orders/0 and its reason: %v", stalls)
	}
	rows := regexp.MustCompile(`(?s)<tr class="dead-letter">(.*?)</tr>`).FindAllStringSubmatch(dom, -1)
	kinds := map[string]int{}
	for _, r := range rows {
		for _, k := range []string{"decode", "handler"} {
			if strings.Contains(r[1], "<td>"+k+"</td>") {
				kinds[k]++
			}
		}
	}
	if len(rows) != 5 || kinds["decode"] != 3 || kinds["handler"] != 2 {
		t.Errorf("dead letters in the DOM: %d rows, kinds %v; want 3 decode and 2 handler", len(rows), kinds)
	}
	if n := strings.Count(dom, "<polyline"); n != 4 {
		t.Errorf("%d charts, want 4", n)
	}
	for _, secret := range []string{"secret-", "customer-", "s3cr3t"} {
		if strings.Contains(dom, secret) {
			t.Errorf("the page shows %q (a key, a value or a credential)", secret)
		}
	}
	if strings.Contains(strings.ToLower(dom), "<script") {
		t.Error("the page has a script")
	}
}
