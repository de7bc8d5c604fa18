package preflight

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/idempotency"
	"github.com/msk-consumer/msk-consumer/internal/kafkaclient"
	"github.com/msk-consumer/msk-consumer/internal/mskevent"
)

// Status is the outcome of one check.
type Status int

// The outcomes. Only Fail makes `consumer check` exit 1: a Warn is
// something the service tolerates (it logs a warning and goes on), a Skip
// a check that could not be made because an earlier one failed or that
// does not apply.
const (
	Pass Status = iota
	Warn
	Fail
	Skip
)

func (s Status) mark() string {
	switch s {
	case Pass:
		return "✓"
	case Warn:
		return "!"
	case Fail:
		return "✗"
	}
	return "-"
}

// Result is one line of `consumer check`.
type Result struct {
	Check  string // what was checked, e.g. "topic orders"
	Status Status
	Detail string // what was found
	Fix    string // what to do about a Fail or a Warn, or ""
}

func (r Result) String() string {
	s := r.Status.mark() + " " + r.Check
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	if r.Fix != "" {
		s += " → " + r.Fix
	}
	return s
}

// Deps is what Check runs with besides the configuration.
type Deps struct {
	// Opts are the client options (kafkaclient.Options and any extra).
	Opts []kgo.Opt
	// Principal describes who the client authenticates as; nil: what the
	// configuration says (the SASL user, the role, or the credential
	// chain).
	Principal func(ctx context.Context) string
	// Timeout bounds each network check; 0 means 15s.
	Timeout time.Duration
	// HTTPClient is used for the schema registry and the HTTP handler's
	// probe; nil: a client with Timeout that follows no redirects.
	HTTPClient *http.Client
	// LambdaProbe, for HANDLER=lambda, invokes the function with
	// InvocationType DryRun and returns what it invoked (for the line)
	// and the error; nil: the check is skipped.
	LambdaProbe func(ctx context.Context) (target string, err error)
}

// Check runs every check of `consumer check` once, in order, and returns
// one Result per check: the brokers answer, the authentication is
// accepted, every topic and dead-letter topic exists, each dead-letter
// topic is not compacted and takes records as large as its sources', the
// group can be described, the schema registry answers and the HTTP
// handler's URL accepts a connection. Checks that need the cluster are
// skipped when the brokers cannot be reached.
func Check(ctx context.Context, cfg config.Config, d Deps) []Result {
	if d.Timeout <= 0 {
		d.Timeout = 15 * time.Second
	}
	var rs []Result
	rs = append(rs, checkCluster(ctx, cfg, d)...)
	rs = append(rs, checkRegistry(ctx, cfg, d)...)
	rs = append(rs, checkHandler(ctx, cfg, d)...)
	rs = append(rs, checkStore(ctx, cfg, d)...)
	return rs
}

// checkStore reaches the idempotency store, if one is configured.
func checkStore(ctx context.Context, cfg config.Config, d Deps) []Result {
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	name := "idempotency store " + string(cfg.Idempotency.Store)
	configured, err := idempotency.Ping(ctx, cfg)
	switch {
	case !configured:
		return nil
	case err != nil:
		return []Result{{Check: name, Status: Fail, Detail: err.Error(),
			Fix: "check REDIS_URL or IDEMPOTENCY_TABLE, the network path to the store, and its permissions (deploy/iam/dynamodb-idempotency-policy.json)"}}
	}
	return []Result{{Check: name, Status: Pass, Detail: "answers"}}
}

// Passed reports whether no result failed.
func Passed(rs []Result) bool {
	return !slices.ContainsFunc(rs, func(r Result) bool { return r.Status == Fail })
}

// Write prints one line per result and a summary line.
func Write(w io.Writer, rs []Result) {
	failed := 0
	for _, r := range rs {
		fmt.Fprintln(w, r)
		if r.Status == Fail {
			failed++
		}
	}
	if failed == 0 {
		fmt.Fprintf(w, "all %d checks passed\n", len(rs))
		return
	}
	fmt.Fprintf(w, "%d of %d checks failed\n", failed, len(rs))
}

// Conns is what a client saw of the brokers, which a request that ran out
// of time does not return. It is a kgo hook (connections and reads); group
// errors are told to Group. The check command and the consumer's start-up
// diagnosis both read it (Seen).
type Conns struct {
	mu   sync.Mutex
	seen Seen
}

// Seen is what Conns saw: whether any connection succeeded, and the last
// error of each kind.
type Seen struct {
	OK    bool
	Conn  error // the last failed connection (dial, TLS, SASL)
	Read  error // the last failed read on an open connection
	Group error // the last group management error
}

var (
	_ kgo.HookBrokerConnect = (*Conns)(nil)
	_ kgo.HookBrokerRead    = (*Conns)(nil)
)

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (s *Conns) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.seen.OK = true
		return
	}
	s.seen.Conn = err
}

// OnBrokerRead implements kgo.HookBrokerRead.
func (s *Conns) OnBrokerRead(_ kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		s.mu.Lock()
		s.seen.Read = err
		s.mu.Unlock()
	}
}

// Group records a group management error.
func (s *Conns) Group(err error) {
	s.mu.Lock()
	s.seen.Group = err
	s.mu.Unlock()
}

// Seen returns what s saw so far.
func (s *Conns) Seen() Seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen
}

// Reached reports whether a connection succeeded and no read failed since.
func (s Seen) Reached() bool { return s.OK && s.Read == nil }

// Last is the error most telling of why the brokers were not reached.
func (s Seen) Last() error { return cmp.Or(s.Conn, s.Read) }

func checkCluster(ctx context.Context, cfg config.Config, d Deps) []Result {
	k := cfg.Kafka
	ce := &Conns{}
	cl, err := kgo.NewClient(append(slices.Clone(d.Opts), kgo.WithHooks(ce))...)
	if err != nil {
		return []Result{{Check: "brokers", Status: Fail, Detail: err.Error(), Fix: "check KAFKA_BROKERS and the KAFKA_TLS_* files"}}
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	brokers := "brokers " + strings.Join(k.Brokers, ",")
	auth := "authentication (KAFKA_AUTH=" + string(k.Auth) + ")"

	mctx, cancel := context.WithTimeout(ctx, d.Timeout)
	meta, err := adm.BrokerMetadata(mctx)
	cancel()
	var rs []Result
	skipRest := func(why string) []Result {
		for _, name := range clusterChecks(cfg) {
			rs = append(rs, Result{Check: name, Status: Skip, Detail: "not checked: " + why})
		}
		return rs
	}
	if err != nil {
		seen := ce.Seen()
		reached, last := seen.OK, seen.Conn
		if last == nil && !errors.Is(err, context.DeadlineExceeded) {
			last = err
		}
		if ae, ok := errors.AsType[*kafkaclient.AuthError](err); ok || kafkaclient.IsFatal(err) {
			rs = append(rs, Result{Check: brokers, Status: Pass, Detail: "reachable"})
			fix := kafkaclient.Hint(err)
			if fix == "" {
				fix = "check KAFKA_AUTH and the credentials"
			}
			detail := err.Error()
			if ae != nil {
				detail = "refused for " + ae.Principal + ": " + ae.Err.Error()
			}
			rs = append(rs, Result{Check: auth, Status: Fail, Detail: detail, Fix: fix})
			return skipRest("authentication failed")
		}
		if k.TLS && !reached {
			if p := ProbeTLS(k.Brokers); p != nil {
				last = p
			}
		}
		detail := "not reached within " + d.Timeout.String()
		if last != nil {
			detail += "; last error: " + last.Error()
		}
		rs = append(rs, Result{Check: brokers, Status: Fail, Detail: detail, Fix: TLSHint(k.TLS, last)})
		rs = append(rs, Result{Check: auth, Status: Skip, Detail: "not checked: brokers not reached"})
		return skipRest("brokers not reached")
	}
	rs = append(rs, Result{Check: brokers, Status: Pass,
		Detail: fmt.Sprintf("reachable; %s in cluster %s", count(len(meta.Brokers), "broker"), clusterID(meta))})
	rs = append(rs, Result{Check: auth, Status: Pass, Detail: principal(ctx, cfg, d)})

	rs = append(rs, checkTopics(ctx, cfg, adm, d)...)
	if cfg.Kafka.GroupType == config.GroupTypeShare {
		return append(rs, checkShare(ctx, cfg, cl, adm, d)...)
	}
	rs = append(rs, checkGroup(ctx, cfg, adm, d))
	return rs
}

// count is n and the noun, plural unless n is 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func clusterID(m kadm.Metadata) string {
	if m.Cluster == "" {
		return "(no id)"
	}
	return m.Cluster
}

// clusterChecks names the checks that need the cluster, for the lines
// skipped when it cannot be reached.
func clusterChecks(cfg config.Config) []string {
	sources, dlqs := topics(cfg)
	var names []string
	for _, t := range sources {
		names = append(names, "topic "+t)
	}
	for _, t := range dlqs {
		names = append(names, "dead-letter topic "+t)
	}
	if cfg.Kafka.GroupType == config.GroupTypeShare {
		return append(names, shareChecks(cfg)...)
	}
	return append(names, "group "+cfg.Kafka.GroupID)
}

// topics returns the source topics and the distinct dead-letter topics,
// sorted.
func topics(cfg config.Config) (sources, dlqs []string) {
	return slices.Sorted(slices.Values(cfg.Kafka.Topics)), cfg.DLQTopics()
}

// principal says who the client authenticated as.
func principal(ctx context.Context, cfg config.Config, d Deps) string {
	k := cfg.Kafka
	if d.Principal != nil {
		return "accepted for " + d.Principal(ctx)
	}
	switch k.Auth {
	case config.AuthNone:
		if k.TLSCertFile != "" {
			return "TLS client certificate " + certSubject(k.TLSCertFile, k.TLSKeyFile)
		}
		return "none (anonymous; KAFKA_AUTH=none)"
	case config.AuthIAM:
		if k.IAMRoleARN != "" {
			return "accepted for role " + k.IAMRoleARN + " (session " + k.IAMSessionName + ")"
		}
		return "accepted for the AWS default credential chain's principal"
	}
	return "accepted for user " + k.SASLUsername
}

func certSubject(certFile, keyFile string) string {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil || len(cert.Certificate) == 0 {
		return certFile
	}
	c, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return certFile
	}
	return c.Subject.String()
}

func checkTopics(ctx context.Context, cfg config.Config, adm *kadm.Client, d Deps) []Result {
	sources, dlqs := topics(cfg)
	all := append(slices.Clone(sources), dlqs...)
	tctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	var rs []Result
	details, err := adm.ListTopics(tctx, all...)
	if err != nil {
		for _, t := range sources {
			rs = append(rs, Result{Check: "topic " + t, Status: Fail, Detail: err.Error(), Fix: describeTopicFix(err)})
		}
		for _, t := range dlqs {
			rs = append(rs, Result{Check: "dead-letter topic " + t, Status: Fail, Detail: err.Error(), Fix: describeTopicFix(err)})
		}
		return rs
	}
	exists := map[string]bool{}
	for _, t := range sources {
		r := topicResult("topic "+t, details[t], "create it, or fix KAFKA_TOPICS")
		exists[t] = r.Status == Pass
		rs = append(rs, r)
	}
	var present []string
	for _, t := range all {
		if d, ok := details[t]; ok && d.Err == nil {
			present = append(present, t)
		}
	}
	configs, denied, cerr := map[string]TopicConfig{}, []string(nil), error(nil)
	if len(present) > 0 {
		rcs, err := adm.DescribeTopicConfigs(tctx, present...)
		if err == nil {
			configs, denied, cerr = ReadConfigs(rcs)
		} else if IsDenied(err) {
			denied = present
		} else {
			cerr = err
		}
	}
	for _, t := range dlqs {
		name := "dead-letter topic " + t
		r := topicResult(name, details[t], "create it (cleanup.policy=delete, max.message.bytes at least the source's), or set DLQ_TOPIC to an existing topic")
		if r.Status != Pass {
			rs = append(rs, r)
			continue
		}
		rs = append(rs, dlqResult(name, t, r.Detail, cfg, configs, denied, cerr))
	}
	return rs
}

func topicResult(name string, d kadm.TopicDetail, create string) Result {
	switch {
	case d.Topic == "" || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
		return Result{Check: name, Status: Fail, Detail: "does not exist", Fix: create}
	case d.Err != nil:
		return Result{Check: name, Status: Fail, Detail: d.Err.Error(), Fix: describeTopicFix(d.Err)}
	}
	return Result{Check: name, Status: Pass, Detail: "exists, " + count(len(d.Partitions), "partition")}
}

func describeTopicFix(err error) string {
	if errors.Is(err, kerr.TopicAuthorizationFailed) {
		return "allow kafka-cluster:DescribeTopic on it (MSK IAM, deploy/iam) or Describe (Kafka ACLs)"
	}
	return kafkaclient.Hint(err)
}

// dlqResult checks a dead-letter topic's configuration against its sources'.
func dlqResult(name, dlqTopic, exists string, cfg config.Config, configs map[string]TopicConfig, denied []string, cerr error) Result {
	if slices.Contains(denied, dlqTopic) {
		return Result{Check: name, Status: Warn, Detail: exists + "; its configuration cannot be read (the service assumes it is not compacted and max.message.bytes is 1 MiB)",
			Fix: "allow " + DescribeConfigsPermission + " (MSK IAM) or DescribeConfigs (Kafka ACLs) on it"}
	}
	if cerr != nil {
		return Result{Check: name, Status: Fail, Detail: exists + "; reading its configuration: " + cerr.Error()}
	}
	dc := configs[dlqTopic]
	if dc.Compacted() {
		return Result{Check: name, Status: Fail, Detail: exists + "; cleanup.policy=" + dc.CleanupPolicy + " (compacted: a dead-letter copy with a null key would be refused)",
			Fix: "kafka-configs --alter --entity-type topics --entity-name " + dlqTopic + " --add-config cleanup.policy=delete"}
	}
	detail := exists + "; cleanup.policy=" + orUnknown(dc.CleanupPolicy)
	var small []string
	need := int32(0)
	for _, src := range cfg.Kafka.Topics {
		if cfg.DLQ.TopicFor(src) != dlqTopic {
			continue
		}
		sc, ok := configs[src]
		if !ok || sc.MaxMessageBytes == 0 || dc.MaxMessageBytes == 0 {
			continue
		}
		if sc.MaxMessageBytes > dc.MaxMessageBytes {
			small = append(small, fmt.Sprintf("%s's %d", src, sc.MaxMessageBytes))
			need = max(need, sc.MaxMessageBytes)
		}
	}
	if len(small) > 0 {
		return Result{Check: name, Status: Fail,
			Detail: fmt.Sprintf("%s; max.message.bytes %d is less than %s (copies of the largest records would lose their value)", detail, dc.MaxMessageBytes, strings.Join(small, ", ")),
			Fix:    fmt.Sprintf("raise its max.message.bytes to at least %d (the source's, plus room for the dlq.* headers)", need+2048)}
	}
	if dc.MaxMessageBytes > 0 {
		detail += fmt.Sprintf(", max.message.bytes %d (at least the source's)", dc.MaxMessageBytes)
	}
	return Result{Check: name, Status: Pass, Detail: detail}
}

func orUnknown(s string) string {
	if s == "" {
		return "(not returned)"
	}
	return s
}

func checkGroup(ctx context.Context, cfg config.Config, adm *kadm.Client, d Deps) Result {
	name := "group " + cfg.Kafka.GroupID
	gctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	// A coordinator not available yet (a new cluster creating its
	// offsets topic, a coordinator moving) is asked again within the
	// timeout.
	var gs kadm.DescribedGroups
	var err error
	for attempt := 1; ; attempt++ {
		gs, err = adm.DescribeGroups(gctx, cfg.Kafka.GroupID)
		if err == nil {
			err = gs[cfg.Kafka.GroupID].Err
		}
		if !coordinatorMoving(err) || gctx.Err() != nil {
			break
		}
		t := time.NewTimer(min(time.Duration(attempt)*200*time.Millisecond, time.Second))
		select {
		case <-gctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		return Result{Check: name, Status: Pass, Detail: "can be described; it does not exist yet (the first member creates it)"}
	}
	if err != nil {
		fix := kafkaclient.Hint(err)
		if errors.Is(err, kerr.GroupAuthorizationFailed) {
			fix = "allow kafka-cluster:DescribeGroup and AlterGroup on the group (MSK IAM, deploy/iam) or Describe and Read (Kafka ACLs)"
		}
		return Result{Check: name, Status: Fail, Detail: err.Error(), Fix: fix}
	}
	g := gs[cfg.Kafka.GroupID]
	switch g.State {
	case "Dead", "":
		return Result{Check: name, Status: Pass, Detail: "can be described; it does not exist yet (the first member creates it)"}
	}
	return Result{Check: name, Status: Pass, Detail: fmt.Sprintf("can be described; state %s, %s", g.State, count(len(g.Members), "member"))}
}

// coordinatorMoving reports whether err says only that the group's
// coordinator is not available yet.
func coordinatorMoving(err error) bool {
	return errors.Is(err, kerr.CoordinatorNotAvailable) || errors.Is(err, kerr.CoordinatorLoadInProgress) || errors.Is(err, kerr.NotCoordinator)
}

// checkRegistry asks the Confluent-compatible registry for its subjects
// when a side's framing is confluent. Glue is not asked: a schema version
// can only be read by its id, which a check does not have.
func checkRegistry(ctx context.Context, cfg config.Config, d Deps) []Result {
	var rs []Result
	if cfg.Key.Registry == config.RegistryGlue || cfg.Value.Registry == config.RegistryGlue {
		rs = append(rs, Result{Check: "glue schema registry", Status: Skip,
			Detail: "not checked: schemas are read by version id as records arrive (glue:GetSchemaVersion)"})
	}
	if cfg.Key.Registry != config.RegistryConfluent && cfg.Value.Registry != config.RegistryConfluent {
		return rs
	}
	u := cfg.Registry.URL
	name := "schema registry " + config.RedactURL(u)
	hc := d.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: d.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(u, "/")+"/subjects", nil)
	if err != nil {
		return append(rs, Result{Check: name, Status: Fail, Detail: err.Error(), Fix: "fix SCHEMA_REGISTRY_URL"})
	}
	if cfg.Registry.Username != "" || cfg.Registry.Password != "" {
		req.SetBasicAuth(cfg.Registry.Username, cfg.Registry.Password)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return append(rs, Result{Check: name, Status: Fail, Detail: redactErr(err, u), Fix: urlFix(u, "SCHEMA_REGISTRY_URL")})
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	switch {
	case resp.StatusCode/100 == 2:
		return append(rs, Result{Check: name, Status: Pass, Detail: "answers (" + resp.Status + ")"})
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return append(rs, Result{Check: name, Status: Fail, Detail: "answers " + resp.Status, Fix: "check SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD"})
	}
	return append(rs, Result{Check: name, Status: Fail, Detail: "GET /subjects answers " + resp.Status, Fix: "check that SCHEMA_REGISTRY_URL is the registry's base URL"})
}

// redactErr is err's text with the URL redacted (net/http errors quote it).
func redactErr(err error, u string) string {
	return strings.ReplaceAll(err.Error(), u, config.RedactURL(u))
}

// urlFix says what to check about a URL that does not answer; a plain
// http:// URL whose port speaks TLS is named as such.
func urlFix(raw, variable string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "fix " + variable
	}
	addr := hostPort(u)
	if u.Scheme == "http" && probeTLS(addr, 3*time.Second) == nil {
		return "port " + u.Port() + " speaks TLS: use https:// in " + variable
	}
	return "check " + variable + ", that the service runs and that the network allows " + addr
}

func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// checkHandler checks the handler. A Lambda handler is probed by
// Deps.LambdaProbe (an Invoke with InvocationType DryRun). The HTTP
// handler's URL must accept a connection in the protocol its scheme says
// (TLS with the certificate verified for https, plain for http; a plain
// http:// URL to a port that speaks TLS, or the other way round, is named
// as such), then answer the contract's probe, a POST of an empty batch,
// with 2xx.
func checkHandler(ctx context.Context, cfg config.Config, d Deps) []Result {
	if cfg.Handler.Name == config.HandlerLambda {
		return checkLambda(ctx, cfg, d)
	}
	if cfg.Handler.Name != config.HandlerHTTP || cfg.Handler.HTTPURL == "" {
		return nil
	}
	rs := checkHandlerConn(cfg, d)
	if rs[0].Status != Pass {
		return rs
	}
	return []Result{probeHTTP(ctx, cfg, d, rs[0].Check)}
}

// checkLambda invokes the function with InvocationType DryRun through
// Deps.LambdaProbe: it checks that the function exists and that the
// principal may invoke it, without running it.
func checkLambda(ctx context.Context, cfg config.Config, d Deps) []Result {
	name := "Lambda handler"
	if d.LambdaProbe == nil {
		return []Result{{Check: name, Status: Skip, Detail: "not checked: this binary has no Lambda probe"}}
	}
	pctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	target, err := d.LambdaProbe(pctx)
	if target != "" {
		name += " " + target
	}
	if err != nil {
		return []Result{{Check: name, Status: Fail, Detail: "Invoke with InvocationType DryRun: " + err.Error(),
			Fix: "check the function name or ARN, AWS_REGION, and that the principal may lambda:InvokeFunction on it"}}
	}
	return []Result{{Check: name, Status: Pass, Detail: "Invoke with InvocationType DryRun accepted"}}
}

// probeHTTP POSTs the contract's probe, a batch without records, to the
// handler's URL, as the service posts a batch (its Content-Type, Accept,
// User-Agent and HTTP_HANDLER_AUTH_HEADER), and wants a 2xx. With
// HTTP_HANDLER_BODY=msk the probe is the MSK event without records (an
// empty records object), the shape such a handler reads.
func probeHTTP(ctx context.Context, cfg config.Config, d Deps, name string) Result {
	h := cfg.Handler
	topic := ""
	if len(cfg.Kafka.Topics) > 0 {
		topic = cfg.Kafka.Topics[0]
	}
	body, _ := json.Marshal(struct {
		Topic     string   `json:"topic"`
		Partition int32    `json:"partition"`
		Records   []string `json:"records"`
	}{topic, 0, []string{}})
	probe := "the probe (a POST of an empty batch)"
	if h.HTTPBody == config.BodyMSK {
		body = mskevent.New(mskevent.Options{ClusterARN: h.KafkaClusterARN, BootstrapServers: cfg.Kafka.Brokers}).AppendProbe(nil)
		probe = "the probe (a POST of an MSK event without records)"
	}
	pctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodPost, h.HTTPURL, bytes.NewReader(body))
	if err != nil {
		return Result{Check: name, Status: Fail, Detail: "cannot build the probe", Fix: "fix HTTP_HANDLER_URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "msk-consumer")
	if h.HTTPAuth != "" {
		req.Header.Set("Authorization", h.HTTPAuth)
	}
	hc := d.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: d.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Result{Check: name, Status: Fail, Detail: probe + ": " + redactErr(err, h.HTTPURL),
			Fix: "check HTTP_HANDLER_URL, that the handler service runs and that the network allows it"}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	detail := probe + " answered " + resp.Status
	switch code := resp.StatusCode; {
	case code/100 == 2:
		return Result{Check: name, Status: Pass, Detail: "answers " + probe + " with " + resp.Status}
	case code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusProxyAuthRequired:
		return Result{Check: name, Status: Fail, Detail: detail, Fix: "check HTTP_HANDLER_AUTH_HEADER"}
	case code == http.StatusNotFound || code == http.StatusMethodNotAllowed || code/100 == 3:
		return Result{Check: name, Status: Fail, Detail: detail,
			Fix: "check HTTP_HANDLER_URL (its path, and that it takes a POST; redirects are not followed)"}
	case code == http.StatusServiceUnavailable || code == http.StatusBadGateway || code == http.StatusGatewayTimeout:
		return Result{Check: name, Status: Fail, Detail: detail, Fix: "the handler service, or the proxy before it, is not ready: check that it runs and is healthy"}
	}
	return Result{Check: name, Status: Fail, Detail: detail,
		Fix: "a handler must answer an empty batch with 2xx (docs: the HTTP handler's probe)"}
}

// checkHandlerConn checks that the HTTP handler's URL accepts a
// connection in the protocol its scheme says; it returns one result.
func checkHandlerConn(cfg config.Config, d Deps) []Result {
	raw := cfg.Handler.HTTPURL
	name := "HTTP handler " + config.RedactURL(raw)
	u, err := url.Parse(raw)
	if err != nil {
		return []Result{{Check: name, Status: Fail, Detail: err.Error(), Fix: "fix HTTP_HANDLER_URL"}}
	}
	addr := hostPort(u)
	conn, err := net.DialTimeout("tcp", addr, d.Timeout)
	if err != nil {
		return []Result{{Check: name, Status: Fail, Detail: "no connection to " + addr + ": " + err.Error(),
			Fix: "check HTTP_HANDLER_URL, that the handler service runs and that the network allows " + addr}}
	}
	conn.Close()
	if u.Scheme == "http" {
		if probeTLS(addr, d.Timeout) == nil {
			return []Result{{Check: name, Status: Fail, Detail: "port " + u.Port() + " speaks TLS, the URL says http://",
				Fix: "use https:// in HTTP_HANDLER_URL"}}
		}
		return []Result{{Check: name, Status: Pass, Detail: "accepts connections on " + addr}}
	}
	conn, err = net.DialTimeout("tcp", addr, d.Timeout)
	if err != nil {
		return []Result{{Check: name, Status: Fail, Detail: err.Error()}}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(d.Timeout))
	tc := tls.Client(conn, &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) {
			return []Result{{Check: name, Status: Fail, Detail: "port " + u.Port() + " does not speak TLS, the URL says https://",
				Fix: "use http:// or the TLS port in HTTP_HANDLER_URL"}}
		}
		return []Result{{Check: name, Status: Fail, Detail: "TLS handshake with " + addr + ": " + err.Error(),
			Fix: "the handler's certificate must be valid for " + u.Hostname() + " and signed by a trusted CA"}}
	}
	return []Result{{Check: name, Status: Pass, Detail: "accepts TLS connections on " + addr + " (certificate verified)"}}
}
