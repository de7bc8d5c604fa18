package metrics_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

// The dashboard and the alert rules live in deploy/observability and query
// the service's metrics by name. This test fails when one of them names a
// metric the service does not export, so that a renamed metric cannot leave
// a panel empty or an alert silent.

const observability = "../../deploy/observability"

// recorder is a registry that remembers its collectors, so that their
// descriptions can be listed: a vector with no children yet is not gathered,
// but it is described.
type recorder struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

// exported builds the registry as cmd/consumer does and returns every metric
// name it exports, with the type of those that can be gathered.
func exported(t *testing.T) (names map[string]bool, types map[string]string) {
	t.Helper()
	reg := &recorder{Registry: prometheus.NewRegistry()}
	metrics.RegisterRuntime(reg)
	metrics.RegisterBuildInfo(reg, "test", "test", "go")
	m := metrics.New(reg)
	// kprom registers its metrics when a client is created with its hooks;
	// kgo.NewClient does not dial.
	kp := kprom.NewMetrics("consumer", kprom.Subsystem("kafka"), kprom.Registerer(reg), kprom.Gatherer(reg))
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), kgo.WithHooks(kp))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	names = map[string]bool{}
	for _, c := range reg.collectors {
		ch := make(chan *prometheus.Desc, 64)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			match := fqNameRE.FindStringSubmatch(d.String())
			if match == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			names[match[1]] = true
		}
	}

	// Children of the service's own vectors, so that they are gathered with
	// their types (histograms are queried through _bucket, _sum, _count).
	m.ForTopic("products")
	m.LagFor("products", 0).Set(1)
	types = map[string]string{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		types[mf.GetName()] = mf.GetType().String()
	}
	return names, types
}

// promqlWords are PromQL's keywords, aggregation operators and functions:
// identifiers that are not metric names. Functions are also recognised by
// the '(' that follows them.
var promqlWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`and or unless by without on ignoring group_left group_right bool offset
		sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio
		inf nan start end`) {
		promqlWords[w] = true
	}
}

var (
	// Grafana's variables: $var, ${var}, ${var:format}, [[var]].
	grafanaVarRE = regexp.MustCompile(`\$\{[^}]*\}|\$\w+|\[\[\w+\]\]`)
	stringRE     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	matchersRE   = regexp.MustCompile(`\{[^{}]*\}`)
	rangeRE      = regexp.MustCompile(`\[[^\[\]]*\]`)
	// by (a, b), without (...), on (...), ignoring (...), group_left (...).
	groupingRE = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	identRE    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// metricNames returns the metric names a PromQL expression (or a Grafana
// query such as label_values(metric, label)) selects.
func metricNames(expr string) []string {
	s := grafanaVarRE.ReplaceAllString(expr, "x")
	s = stringRE.ReplaceAllString(s, `""`)
	s = matchersRE.ReplaceAllString(s, " ")
	s = rangeRE.ReplaceAllString(s, " ")
	s = groupingRE.ReplaceAllString(s, " ")
	// label_values(metric, label) and friends: the label is not a metric.
	s = regexp.MustCompile(`(label_values|query_result)\s*\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*\w+\s*\)`).ReplaceAllString(s, "$2")
	var out []string
	for _, loc := range identRE.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(s[loc[0]-1:loc[0]], "0123456789.") {
			continue // part of a number: 1e3, 0.99, 5m
		}
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || promqlWords[strings.ToLower(name)] {
			continue
		}
		out = append(out, name)
	}
	return out
}

func TestMetricNamesExtraction(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`histogram_quantile(0.99, sum by (le, topic) (rate(consumer_batch_duration_seconds_bucket{job=~"$job", topic=~"${topic}"}[$__rate_interval])))`,
			[]string{"consumer_batch_duration_seconds_bucket"}},
		{`sum by (job, topic) (rate(consumer_records_total{outcome="dead_lettered"}[5m])) / ignoring(outcome) sum by (job, topic) (rate(consumer_records_total[5m])) > 0.01`,
			[]string{"consumer_records_total", "consumer_records_total"}},
		{`deriv((sum by (job, topic) (consumer_lag_records))[15m:1m]) > 0 and on (job) consumer_ready == 0`,
			[]string{"consumer_lag_records", "consumer_ready"}},
		{`label_values(consumer_records_total{job=~"$job"}, topic)`, []string{"consumer_records_total"}},
		{`max without (instance) (consumer_assigned_partitions offset 1h) > bool 3`, []string{"consumer_assigned_partitions"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%s)\n got %q\nwant %q", tc.expr, got, tc.want)
		}
	}
}

// dashboardQueries returns every "expr" of the dashboard's targets and every
// query of its template variables.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(observability, "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	var out []string
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				walk(c, k)
			}
		case []any:
			for _, c := range v {
				walk(c, key)
			}
		case string:
			if key == "expr" {
				out = append(out, v)
			}
		}
	}
	walk(doc, "")
	if d, ok := doc.(map[string]any); ok {
		if tmpl, ok := d["templating"].(map[string]any); ok {
			list, _ := tmpl["list"].([]any)
			for _, v := range list {
				v, _ := v.(map[string]any)
				if v["type"] != "query" {
					continue
				}
				switch q := v["query"].(type) {
				case string:
					out = append(out, q)
				case map[string]any:
					if s, ok := q["query"].(string); ok {
						out = append(out, s)
					}
				}
			}
		}
	}
	return out
}

// alertExprs returns every rule's expr in alerts.yaml. The file is YAML, but
// written with each expr as a plain or block scalar after "expr:", which is
// all this reads (promtool checks the YAML itself).
func alertExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(observability, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(trimmed, "expr:") {
			continue
		}
		val := strings.TrimSpace(strings.TrimPrefix(trimmed, "expr:"))
		if val != "|" && val != ">" && val != "|-" && val != ">-" {
			out = append(out, strings.Trim(val, `'`))
			continue
		}
		indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
		var block []string
		for i+1 < len(lines) {
			next := lines[i+1]
			if strings.TrimSpace(next) != "" && len(next)-len(strings.TrimLeft(next, " ")) <= indent {
				break
			}
			block = append(block, next)
			i++
		}
		out = append(out, strings.Join(block, "\n"))
	}
	return out
}

func TestObservabilityUsesExportedMetrics(t *testing.T) {
	names, types := exported(t)
	for _, want := range []string{"consumer_records_total", "consumer_kafka_connect_errors_total", "go_goroutines", "process_resident_memory_bytes"} {
		if !names[want] {
			t.Fatalf("registry does not describe %s: the test's registry is not built like the service's", want)
		}
	}

	sources := map[string][]string{
		"dashboard.json": dashboardQueries(t),
		"alerts.yaml":    alertExprs(t),
	}
	for file, exprs := range sources {
		if len(exprs) < 5 {
			t.Errorf("%s: found only %d queries; is the file complete?", file, len(exprs))
		}
		used := map[string]bool{}
		for _, e := range exprs {
			for _, n := range metricNames(e) {
				used[n] = true
			}
		}
		if len(used) == 0 {
			t.Errorf("%s: no metric names found", file)
		}
		var unknown []string
		for n := range used {
			if !isExported(n, names, types) && !prometheusSeries[n] {
				unknown = append(unknown, n)
			}
		}
		sort.Strings(unknown)
		for _, n := range unknown {
			t.Errorf("%s queries %s, which the service does not export", file, n)
		}
	}
}

// prometheusSeries are the series Prometheus writes itself for every
// target it scrapes: the only names besides the service's that a query may
// use (MSKConsumerDown reads up).
var prometheusSeries = map[string]bool{"up": true}

// isExported says whether name is a metric of the registry or a series of
// one of its histograms or summaries.
func isExported(name string, names map[string]bool, types map[string]string) bool {
	if names[name] {
		typ, known := types[name]
		// A histogram is queried through its series, never by its bare name.
		return !known || (typ != "HISTOGRAM" && typ != "SUMMARY")
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok || !names[base] {
			continue
		}
		switch types[base] {
		case "HISTOGRAM":
			return true
		case "SUMMARY":
			return suffix != "_bucket"
		}
	}
	return false
}
