// Command chaos measures the service's no-loss promise under crashes, on a
// real Apache Kafka broker (scripts/kafka): a producer writes a known
// sequence; the built binary runs with the HTTP handler pointing at a checker
// that records every delivery and injects failures; the harness SIGKILLs the
// service at random moments and restarts it, restarts the broker once, runs
// two instances at once for a while, and makes the dead-letter topic
// unwritable for a while. At the end it checks record by record: every
// record delivered or dead-lettered, order within partitions on first
// delivery, committed offsets at the end of every partition, and it counts
// duplicates.
//
// With -store=redis or -store=dynamodb the service runs with that
// idempotency store (IDEMPOTENCY_STORE; Redis from scripts/redis, DynamoDB
// on moto from scripts/moto), and the report says how far each duplicate's
// first successful delivery was from the SIGKILL that followed it: with a
// store, duplicates come only from records in flight when a crash hit.
//
// With -nodes 3 the faults are those of a three-broker cluster instead
// (cluster.go): the topics get replication factor 3 and min.insync.replicas
// 2, and the harness SIGKILLs the broker leading the most partitions and
// then the dead-letter topic's leader (each restarted), restarts the three
// brokers one at a time as MSK patching does, and SIGSTOPs a broker for
// longer than the session timeout; for each fault it reports the longest
// stall of every partition. -group-protocol consumer runs the service with
// KAFKA_GROUP_PROTOCOL=consumer (KIP-848).
//
// Run it with `make chaos` (which starts and stops the broker), or `make
// chaos-cluster` (three brokers). The brokers are those of
// scripts/kafka/env.sh: KAFKA_BROKERS, else 127.0.0.1:19092.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	brokers    = flag.String("brokers", envOr("KAFKA_BROKERS", "127.0.0.1:19092"), "the real brokers, comma-separated (default: $KAFKA_BROKERS of scripts/kafka/env.sh)")
	records    = flag.Int("records", 200000, "records to produce")
	partitions = flag.Int("partitions", 6, "partitions of the source topic")
	rate       = flag.Int("rate", 4000, "records produced per second")
	kills      = flag.Int("kills", 12, "SIGKILLs of the service")
	seed       = flag.Uint64("seed", uint64(time.Now().UnixNano()), "random seed, for a rerun")
	bin        = flag.String("bin", "bin/consumer", "the service binary")
	scripts    = flag.String("scripts", "scripts/kafka", "the broker scripts (for the restart)")
	report     = flag.String("report", "", "write the figures as JSON here")
	store      = flag.String("store", "none", "IDEMPOTENCY_STORE of the service: none, redis, dynamodb")
	redisURL   = flag.String("redis-url", "redis://127.0.0.1:16379/0", "REDIS_URL with -store=redis (scripts/redis/up.sh)")
	dynamoURL  = flag.String("dynamodb-endpoint", "http://127.0.0.1:18000", "AWS_ENDPOINT_URL_DYNAMODB with -store=dynamodb (scripts/moto/up.sh)")
	inProgress = flag.Duration("in-progress-ttl", 5*time.Second, "IDEMPOTENCY_IN_PROGRESS_TTL with a store: how long a crashed instance's claims hold up the next")
	nodes      = flag.Int("nodes", 1, "brokers of the cluster: 1 (the service's faults and a broker restart) or 3 (broker faults: cluster.go)")
	groupProto = flag.String("group-protocol", "classic", "KAFKA_GROUP_PROTOCOL of the service: classic or consumer (KIP-848)")
	groupType  = flag.String("group", "consumer", "KAFKA_GROUP_TYPE of the service: consumer, or share (KIP-932, Kafka 4.2+: PROCESSING_ORDER none, no order checked, acknowledgements in place of commits)")
	shareLock  = flag.Duration("share-lock", 5*time.Second, "with -group share: the group's share.record.lock.duration.ms, how long a killed member's records stay locked")
	order      = flag.String("order", "partition", "PROCESSING_ORDER of the service: partition (first deliveries checked in offset order per partition), key (per key) or none (not checked)")
	lanes      = flag.Int("lanes", 16, "PARTITION_CONCURRENCY with -order key or none")
	keys       = flag.Int("keys", 0, "distinct record keys, k<seq mod keys>; 0: one key per record (500 with -order key)")
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// seeds is the -brokers list.
func seeds() []string { return strings.Split(*brokers, ",") }

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

// key identifies a record.
type key struct {
	p int32
	o int64
}

type checker struct {
	mu         sync.Mutex
	succeeded  map[key]int       // successful deliveries per record
	firstOK    map[key]time.Time // when each record first succeeded
	attempts   map[key]int       // all deliveries per record
	firstOrder map[int32][]int64
	keyOrder   map[string][]int64    // first deliveries per partition and key (-order key)
	okTimes    map[int32][]time.Time // when a request of the partition had a success
	dupTimes   []time.Time           // when a record succeeded again
	requests   int
	failed503  int
}

// Failure injection, decided by the record's sequence number so that every
// attempt of a record gets the same treatment: seq%97 == 0 fails every
// attempt (dead-lettered as handler), seq%31 == 0 fails its first attempt
// only. One request in 100 is answered 503 (the whole batch retried).
func (c *checker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Partition int32 `json:"partition"`
		Records   []struct {
			Offset int64           `json:"offset"`
			Key    json.RawMessage `json:"key"`
			Value  json.RawMessage `json:"value"`
		} `json:"records"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	whole503 := c.requests%100 == 0
	var failures []string
	for _, rec := range body.Records {
		k := key{body.Partition, rec.Offset}
		c.attempts[k]++
		if c.attempts[k] == 1 {
			c.firstOrder[k.p] = append(c.firstOrder[k.p], k.o)
			pk := strconv.Itoa(int(k.p)) + "/" + string(rec.Key)
			c.keyOrder[pk] = append(c.keyOrder[pk], k.o)
		}
		var v struct{ Seq int }
		_ = json.Unmarshal(rec.Value, &v)
		fail := v.Seq%97 == 0 || (v.Seq%31 == 0 && c.attempts[k] == 1)
		if whole503 {
			continue
		}
		if fail {
			failures = append(failures, `{"itemIdentifier":"`+strconv.FormatInt(rec.Offset, 10)+`"}`)
			continue
		}
		if c.succeeded[k]++; c.succeeded[k] == 1 {
			c.firstOK[k] = time.Now()
		} else {
			c.dupTimes = append(c.dupTimes, time.Now())
		}
	}
	if whole503 {
		c.failed503++
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if len(failures) < len(body.Records) {
		c.okTimes[body.Partition] = append(c.okTimes[body.Partition], time.Now())
	}
	fmt.Fprintf(w, `{"batchItemFailures":[%s]}`, strings.Join(failures, ","))
}

type instance struct {
	name    string
	cmd     *exec.Cmd
	done    chan error
	exited  chan struct{} // closed when the process has exited
	logFile *os.File
}

type harness struct {
	topic, dlq, group string
	checkerURL        string
	logDir            string
	rng               *rand.Rand
	mu                sync.Mutex
	running           map[string]*instance
	events            []string
	kills             []time.Time
	port              atomic.Int32
	table             string // with -store=dynamodb
}

func (h *harness) event(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05.000"), msg)
	h.mu.Lock()
	h.events = append(h.events, msg)
	h.mu.Unlock()
}

func (h *harness) start(name string) (*instance, error) {
	f, err := os.OpenFile(filepath.Join(h.logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(*bin)
	cmd.Env = []string{
		"KAFKA_BROKERS=" + *brokers,
		"KAFKA_TOPICS=" + h.topic,
		"DLQ_TOPIC=" + h.dlq,
		"KAFKA_GROUP_ID=" + h.group,
		"KAFKA_AUTH=none",
		"KAFKA_SESSION_TIMEOUT=6s",
		"KAFKA_HEARTBEAT_INTERVAL=500ms",
		"KAFKA_REBALANCE_TIMEOUT=10s",
		"KAFKA_COMMIT_INTERVAL=1s",
		"VALUE_FORMAT=json",
		"KEY_FORMAT=string",
		"HANDLER=http",
		"HTTP_HANDLER_URL=" + h.checkerURL,
		"HTTP_HANDLER_TIMEOUT=5s",
		"HANDLER_MAX_ATTEMPTS=3",
		"HANDLER_RETRY_BACKOFF=20ms",
		"HANDLER_RETRY_BACKOFF_MAX=200ms",
		"BATCH_MAX_RECORDS=200",
		"BATCH_MAX_WAIT=200ms",
		"SHUTDOWN_TIMEOUT=10s",
		"UNREADY_AFTER=5s",
		"METRICS_ADDR=127.0.0.1:" + strconv.Itoa(int(h.port.Add(1))),
		"LOG_LEVEL=warn",
		"KAFKA_GROUP_PROTOCOL=" + *groupProto,
		"PROCESSING_ORDER=" + *order,
		"KAFKA_GROUP_TYPE=" + *groupType,
		"PARTITION_CONCURRENCY=" + strconv.Itoa(*lanes),
	}
	switch *store {
	case "none":
	case "redis":
		cmd.Env = append(cmd.Env, "IDEMPOTENCY_STORE=redis", "REDIS_URL="+*redisURL,
			"IDEMPOTENCY_IN_PROGRESS_TTL="+inProgress.String())
	case "dynamodb":
		cmd.Env = append(cmd.Env, "IDEMPOTENCY_STORE=dynamodb", "IDEMPOTENCY_TABLE="+h.table,
			"IDEMPOTENCY_IN_PROGRESS_TTL="+inProgress.String(),
			"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL_DYNAMODB="+*dynamoURL,
			"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
			"AWS_EC2_METADATA_DISABLED=true")
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	in := &instance{name: name, cmd: cmd, done: make(chan error, 1), exited: make(chan struct{}), logFile: f}
	go func() { err := cmd.Wait(); f.Close(); close(in.exited); in.done <- err }()
	h.mu.Lock()
	h.running[name] = in
	h.mu.Unlock()
	return in, nil
}

// stop sends sig and waits for the exit; SIGTERM must exit 0.
func (h *harness) stop(in *instance, sig syscall.Signal) error {
	_ = in.cmd.Process.Signal(sig)
	var err error
	select {
	case err = <-in.done:
	case <-time.After(30 * time.Second):
		_ = in.cmd.Process.Kill()
		err = <-in.done
		err = fmt.Errorf("%s did not exit within 30s of %v (killed): %v", in.name, sig, err)
	}
	h.mu.Lock()
	delete(h.running, in.name)
	h.mu.Unlock()
	if sig == syscall.SIGTERM && err != nil {
		return fmt.Errorf("%s: exit after SIGTERM: %w", in.name, err)
	}
	return nil
}

func run() error {
	rng := rand.New(rand.NewPCG(*seed, *seed>>1))
	run := strconv.FormatInt(time.Now().Unix(), 36)
	logDir, err := os.MkdirTemp("", "chaos-"+run)
	if err != nil {
		return err
	}
	h := &harness{
		topic: "chaos-" + run, dlq: "chaos-" + run + ".dlq", group: "chaos-" + run,
		logDir: logDir, rng: rng, running: map[string]*instance{},
	}
	h.port.Store(29000)
	if *nodes != 1 && *nodes != 3 {
		return fmt.Errorf("-nodes=%d: want 1 or 3", *nodes)
	}
	if *order != "partition" && *order != "key" && *order != "none" {
		return fmt.Errorf("-order=%s: want partition, key or none", *order)
	}
	if *groupProto != "classic" && *groupProto != "consumer" {
		return fmt.Errorf("-group-protocol=%s: want classic or consumer", *groupProto)
	}
	switch *groupType {
	case "consumer":
	case "share":
		// A share group has no order: records of a partition go to any
		// member, and redeliveries come after later records.
		*order = "none"
	default:
		return fmt.Errorf("-group=%s: want consumer or share", *groupType)
	}
	if *nodes == 1 {
		fmt.Printf("chaos: seed %d, %d records, %d partitions, idempotency store %s, group protocol %s, processing order %s, logs in %s\n", *seed, *records, *partitions, *store, *groupProto, *order, logDir)
	} else {
		fmt.Printf("chaos: %d brokers (%s), seed %d, %d records/s until the faults end, %d partitions, idempotency store %s, group protocol %s, logs in %s\n",
			*nodes, *brokers, *seed, *rate, *partitions, *store, *groupProto, logDir)
	}
	switch *store {
	case "none", "redis":
	case "dynamodb":
		h.table = "chaos-" + run
		if err := createTable(context.Background(), h.table); err != nil {
			return fmt.Errorf("create the DynamoDB table on %s: %w", *dynamoURL, err)
		}
	default:
		return fmt.Errorf("-store=%s: want none, redis or dynamodb", *store)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds()...), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordRetries(1<<30), kgo.RequestRetries(1<<30))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	// One broker: replication factor 1. Three: 3, with min.insync.replicas
	// 2, as MSK sets them.
	rf, topicConfigs := int16(1), map[string]*string(nil)
	if *nodes == 3 {
		two := "2"
		rf, topicConfigs = 3, map[string]*string{"min.insync.replicas": &two}
	}
	if _, err := adm.CreateTopic(ctx, int32(*partitions), rf, topicConfigs, h.topic); err != nil {
		return fmt.Errorf("create %s: %w", h.topic, err)
	}
	if _, err := adm.CreateTopic(ctx, 2, rf, topicConfigs, h.dlq); err != nil {
		return fmt.Errorf("create %s: %w", h.dlq, err)
	}
	// Creation is asynchronous, and a broker of a cluster may learn of
	// the topics later than another: the service, which gives up on a
	// topic that does not exist, starts once every broker knows both.
	if err := waitTopics(ctx, seeds(), 30*time.Second, h.topic, h.dlq); err != nil {
		return err
	}
	if *groupType == "share" {
		// A short lock, so that a killed member's records come back
		// soon; the delivery limit stays the brokers' default (5).
		if err := setShareLock(ctx, cl, h.group, *shareLock); err != nil {
			return err
		}
	}

	chk := &checker{succeeded: map[key]int{}, firstOK: map[key]time.Time{}, attempts: map[key]int{}, firstOrder: map[int32][]int64{}, keyOrder: map[string][]int64{}, okTimes: map[int32][]time.Time{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: chk}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	h.checkerURL = "http://" + ln.Addr().String()

	// The producer: a known sequence, at a steady rate, retrying through
	// the broker restart; with three brokers, until stopProducing is
	// closed after the last fault.
	var mu sync.Mutex
	produced := map[key]int{} // record → seq
	var producedN atomic.Int64
	prodDone := make(chan error, 1)
	stopProducing := make(chan struct{})
	limit := *records
	if *nodes == 3 {
		limit = math.MaxInt
	}
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		per := max(*rate/100, 1)
		var wg sync.WaitGroup
	produce:
		for seq := 0; seq < limit; {
			select {
			case <-tick.C:
			case <-stopProducing:
				break produce
			}
			for range per {
				if seq >= limit {
					break
				}
				s := seq
				r := &kgo.Record{Topic: h.topic, Key: []byte("k" + strconv.Itoa(keyOf(s))), Value: fmt.Appendf(nil, `{"seq":%d}`, s)}
				wg.Add(1)
				cl.Produce(ctx, r, func(r *kgo.Record, err error) {
					defer wg.Done()
					if err != nil {
						fmt.Fprintln(os.Stderr, "produce:", err)
						return
					}
					mu.Lock()
					produced[key{r.Partition, r.Offset}] = s
					mu.Unlock()
					producedN.Add(1)
				})
				seq++
			}
		}
		wg.Wait()
		prodDone <- nil
	}()

	a, err := h.start("a-0")
	if err != nil {
		return err
	}
	h.event("started a-0")
	runStart := time.Now()
	var windows []faultWindow
	var crashes int
	dlqBroken, brokerRestarted := false, false
	if *nodes == 3 {
		if windows, err = h.clusterFaults(ctx, adm, a); err != nil {
			return err
		}
		// A tail of production after the last fault, so that every
		// partition's stall during it ends in a delivery.
		time.Sleep(5 * time.Second)
		close(stopProducing)
		<-prodDone
		h.event("producer done: %d records", producedN.Load())
	} else {
		if a, crashes, dlqBroken, brokerRestarted, err = h.nodeFaults(ctx, adm, a); err != nil {
			return err
		}
		<-prodDone
		h.event("producer done: %d records", producedN.Load())
	}
	return h.finish(ctx, adm, chk, a, produced, &mu, runStart, windows, crashes, dlqBroken, brokerRestarted)
}

// nodeFaults is the schedule of faults of one broker, over the production
// time: SIGKILLs of the service, a second instance for a while, an
// unwritable dead-letter topic, a broker restart.
func (h *harness) nodeFaults(ctx context.Context, adm *kadm.Client, a *instance) (_ *instance, crashes int, dlqBroken, brokerRestarted bool, err error) {
	rng := h.rng
	duration := time.Duration(*records / *rate) * time.Second
	killEvery := duration / time.Duration(*kills+2)
	var b *instance
	dlqFixed := false
	deadline := time.Now().Add(duration)
	for i := 1; i <= *kills; i++ {
		wait := killEvery/2 + time.Duration(rng.Int64N(int64(killEvery)))
		time.Sleep(wait)
		if err := h.stop(a, syscall.SIGKILL); err != nil {
			return nil, 0, false, false, err
		}
		crashes++
		h.kills = append(h.kills, time.Now())
		h.event("SIGKILL a-%d (crash %d)", i-1, crashes)
		if a, err = h.start("a-" + strconv.Itoa(i)); err != nil {
			return nil, 0, false, false, err
		}
		h.event("started a-%d", i)
		switch {
		case i == 2:
			if b, err = h.start("b"); err != nil {
				return nil, 0, false, false, err
			}
			h.event("started b: two instances")
		case i == 5 && b != nil:
			if err := h.stop(b, syscall.SIGTERM); err != nil {
				return nil, 0, false, false, err
			}
			b = nil
			h.event("SIGTERM b: exit 0")
		case i == 4:
			tiny := "64"
			if err := setMaxMessageBytes(ctx, adm, h.dlq, &tiny); err != nil {
				return nil, 0, false, false, err
			}
			dlqBroken = true
			h.event("dead-letter topic unwritable (max.message.bytes=64: every write MESSAGE_TOO_LARGE)")
		case i == 7 && dlqBroken:
			if err := setMaxMessageBytes(ctx, adm, h.dlq, nil); err != nil {
				return nil, 0, false, false, err
			}
			dlqFixed = true
			h.event("dead-letter topic writable again")
		case i == 9:
			h.event("restarting the broker")
			if err := restartBroker(); err != nil {
				return nil, 0, false, false, err
			}
			brokerRestarted = true
			h.event("broker back")
		}
	}
	if dlqBroken && !dlqFixed {
		if err := setMaxMessageBytes(ctx, adm, h.dlq, nil); err != nil {
			return nil, 0, false, false, err
		}
		h.event("dead-letter topic writable again")
	}
	if b != nil {
		if err := h.stop(b, syscall.SIGTERM); err != nil {
			return nil, 0, false, false, err
		}
	}
	if d := time.Until(deadline); d > 0 {
		time.Sleep(d)
	}
	return a, crashes, dlqBroken, brokerRestarted, nil
}

// finish waits until every record is accounted for, stops the service and
// checks record by record.
func (h *harness) finish(ctx context.Context, adm *kadm.Client, chk *checker, a *instance, produced map[key]int, mu *sync.Mutex,
	runStart time.Time, windows []faultWindow, crashes int, dlqBroken, brokerRestarted bool) error {
	logDir := h.logDir

	// Wait until every record is accounted for, then stop cleanly.
	dead := map[key]string{}
	waitUntil := time.Now().Add(3 * time.Minute)
	for {
		if err := readDLQ(ctx, h.dlq, dead); err != nil {
			return err
		}
		missing := 0
		chk.mu.Lock()
		mu.Lock()
		for k := range produced {
			if chk.succeeded[k] == 0 && dead[k] == "" {
				missing++
			}
		}
		mu.Unlock()
		chk.mu.Unlock()
		if missing == 0 || time.Now().After(waitUntil) {
			break
		}
		if err := h.alive(a); err != nil {
			return err
		}
		time.Sleep(time.Second)
	}
	var faults []faultReport
	chk.mu.Lock()
	for i, w := range windows {
		next := time.Now()
		if i+1 < len(windows) {
			next = windows[i+1].start
		}
		faults = append(faults, w.report(runStart, chk.okTimes, time.Now()))
		faults[i].Duplicates = countBetween(chk.dupTimes, w.start, next)
	}
	chk.mu.Unlock()
	if err := h.stop(a, syscall.SIGTERM); err != nil {
		return err
	}
	h.event("SIGTERM %s: exit 0", a.name)

	// The checks.
	res := result{Seed: *seed, Store: *store, Nodes: *nodes, GroupProtocol: *groupProto, GroupType: *groupType, Records: len(produced), Crashes: crashes, BrokerRestarts: b2i(brokerRestarted),
		DLQOutages: b2i(dlqBroken), Requests: chk.requests, Whole503: chk.failed503, Faults: faults}
	chk.mu.Lock()
	for k, seq := range produced {
		switch {
		case chk.succeeded[k] > 0:
			res.Delivered++
			res.Duplicates += chk.succeeded[k] - 1
			if chk.succeeded[k] > 1 {
				res.dupGap(chk.firstOK[k], h.kills)
			}
			if seq%97 == 0 {
				res.Errors = append(res.Errors, fmt.Sprintf("%d/%d (seq %d) succeeded but always fails", k.p, k.o, seq))
			}
		case dead[k] == "delivery-limit":
			// A record in flight at delivery-limit - 1 of the kills
			// (each spends one of its deliveries): dead-lettered before
			// the handler saw it, as the contract says, not lost.
			res.DeadLettered++
			res.DeliveryLimit++
		case dead[k] != "":
			res.DeadLettered++
			if seq%97 != 0 {
				res.Errors = append(res.Errors, fmt.Sprintf("%d/%d (seq %d) dead-lettered (%s) but should succeed", k.p, k.o, seq, dead[k]))
			}
			if dead[k] != "handler" {
				// Also a copy written without its value during the
				// dead-letter outage: the value is dropped only when
				// that makes a copy fit, and these are small.
				res.Errors = append(res.Errors, fmt.Sprintf("%d/%d (seq %d) dead-lettered as %q, want \"handler\" with its value", k.p, k.o, seq, dead[k]))
			}
		default:
			res.Lost++
			res.Errors = append(res.Errors, fmt.Sprintf("LOST %d/%d (seq %d)", k.p, k.o, seq))
		}
	}
	switch *order {
	case "partition":
		for p, offs := range chk.firstOrder {
			if !sort.SliceIsSorted(offs, func(i, j int) bool { return offs[i] < offs[j] }) {
				res.OrderViolations++
				res.Errors = append(res.Errors, fmt.Sprintf("partition %d: first deliveries out of offset order", p))
			}
		}
	case "key":
		for pk, offs := range chk.keyOrder {
			if !sort.SliceIsSorted(offs, func(i, j int) bool { return offs[i] < offs[j] }) {
				res.OrderViolations++
				res.Errors = append(res.Errors, fmt.Sprintf("partition/key %s: first deliveries out of offset order", pk))
			}
		}
	}
	chk.mu.Unlock()
	ends, err := adm.ListEndOffsets(ctx, h.topic)
	if err != nil {
		return err
	}
	// A share group commits nothing: every record handled or
	// dead-lettered (above) is what shows that none was archived unhandled.
	offs, err := adm.FetchOffsets(ctx, h.group)
	if err != nil && *groupType == "consumer" {
		return err
	}
	ends.Each(func(e kadm.ListedOffset) {
		if *groupType == "share" {
			return
		}
		o, _ := offs.Lookup(h.topic, e.Partition)
		if o.At != e.Offset {
			res.Errors = append(res.Errors, fmt.Sprintf("partition %d committed %d, end %d", e.Partition, o.At, e.Offset))
		} else {
			res.PartitionsCommittedAtEnd++
		}
	})
	if crashes > 0 {
		res.DuplicatesPerCrash = float64(res.Duplicates) / float64(crashes)
	}
	res.DLQWriteFailures = countInLogs(logDir, "dead-letter write failed")
	if dlqBroken && res.DLQWriteFailures == 0 {
		res.Errors = append(res.Errors, "the dead-letter outage caused no failed write: the fault did not take effect")
	}
	res.Events = h.events
	out, _ := json.MarshalIndent(res, "", "  ")
	fmt.Println(string(out))
	if *report != "" {
		if err := os.WriteFile(*report, out, 0o644); err != nil {
			return err
		}
	}
	if res.Lost > 0 || res.OrderViolations > 0 || len(res.Errors) > 0 || res.Delivered+res.DeadLettered != res.Records {
		return errors.New("the run found problems (see errors above)")
	}
	if len(faults) > 0 {
		fmt.Print(stallTable(faults, *partitions))
	}
	fmt.Printf("chaos: OK: %d records, %d delivered, %d dead-lettered (%d as delivery-limit), 0 lost, %d duplicates (%.1f per crash over %d crashes; idempotency store %s, %s group)\n",
		res.Records, res.Delivered, res.DeadLettered, res.DeliveryLimit, res.Duplicates, res.DuplicatesPerCrash, crashes, *store, *groupType)
	if res.Duplicates > 0 && crashes > 0 {
		fmt.Printf("chaos: every duplicated record first succeeded at most %.0f ms before a SIGKILL; %d more than a second before one\n",
			res.MaxDupGapMS, res.DupsFarFromCrash)
	}
	return nil
}

type result struct {
	Seed               uint64  `json:"seed"`
	Store              string  `json:"idempotency_store"`
	Nodes              int     `json:"brokers"`
	GroupProtocol      string  `json:"group_protocol"`
	Records            int     `json:"records"`
	Delivered          int     `json:"delivered"`
	DeadLettered       int     `json:"dead_lettered"`
	Lost               int     `json:"lost"`
	Duplicates         int     `json:"duplicates"`
	DuplicatesPerCrash float64 `json:"duplicates_per_crash"`
	// DuplicatedRecords are the records delivered successfully more than
	// once; MaxDupGapMS is the longest any of them had first succeeded
	// before the SIGKILL that followed; DupsFarFromCrash counts those that
	// first succeeded more than a second before the next SIGKILL (or after
	// the last): duplicates not explained by work in flight at a crash.
	DuplicatedRecords        int     `json:"duplicated_records"`
	MaxDupGapMS              float64 `json:"max_duplicate_gap_to_crash_ms"`
	DupsFarFromCrash         int     `json:"duplicates_far_from_a_crash"`
	OrderViolations          int     `json:"order_violations"`
	PartitionsCommittedAtEnd int     `json:"partitions_committed_at_end"`
	GroupType                string  `json:"group_type"`
	DeliveryLimit            int     `json:"dead_lettered_delivery_limit"`
	Crashes                  int     `json:"crashes"`
	BrokerRestarts           int     `json:"broker_restarts"`
	DLQOutages               int     `json:"dlq_outages"`
	Requests                 int     `json:"handler_requests"`
	Whole503                 int     `json:"handler_503s"`
	DLQWriteFailures         int     `json:"dlq_write_failures"`
	// Faults are the three-broker faults, each with the longest stall of
	// every partition while it lasted (-nodes 3).
	Faults []faultReport `json:"faults,omitempty"`
	Errors []string      `json:"errors,omitempty"`
	Events []string      `json:"events"`
}

// dupGap accounts for a record delivered more than once, first at first,
// against the SIGKILL times.
func (r *result) dupGap(first time.Time, kills []time.Time) {
	r.DuplicatedRecords++
	for _, k := range kills {
		if !k.Before(first) {
			gap := k.Sub(first)
			r.MaxDupGapMS = max(r.MaxDupGapMS, float64(gap.Microseconds())/1000)
			if gap > time.Second {
				r.DupsFarFromCrash++
			}
			return
		}
	}
	r.DupsFarFromCrash++
}

// createTable creates the idempotency table for -store=dynamodb from
// deploy/dynamodb's definition, on the emulator.
func createTable(ctx context.Context, name string) error {
	b, err := os.ReadFile("deploy/dynamodb/table.json")
	if err != nil {
		return err
	}
	var def struct {
		AttributeDefinitions []struct{ AttributeName, AttributeType string }
		KeySchema            []struct{ AttributeName, KeyType string }
	}
	if err := json.Unmarshal(b, &def); err != nil {
		return err
	}
	in := &dynamodb.CreateTableInput{TableName: aws.String(name), BillingMode: types.BillingModePayPerRequest}
	for _, a := range def.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(a.AttributeName), AttributeType: types.ScalarAttributeType(a.AttributeType)})
	}
	for _, k := range def.KeySchema {
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(k.AttributeName), KeyType: types.KeyType(k.KeyType)})
	}
	cl := dynamodb.New(dynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(*dynamoURL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	_, err = cl.CreateTable(ctx, in)
	return err
}

// countInLogs counts the lines of the instances' logs that contain s.
func countInLogs(dir, s string) int {
	n := 0
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			n += strings.Count(string(b), s)
		}
	}
	return n
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// setMaxMessageBytes sets the topic's max.message.bytes, or with nil restores
// the broker default. (On Kafka 4, min.insync.replicas above a single
// replica does not stop acks=all writes, so it cannot make a topic
// unwritable.)
func setMaxMessageBytes(ctx context.Context, adm *kadm.Client, topic string, v *string) error {
	op := kadm.SetConfig
	if v == nil {
		op = kadm.DeleteConfig
	}
	resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: op, Name: "max.message.bytes", Value: v}}, topic)
	if err != nil {
		return err
	}
	for _, r := range resp {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

func restartBroker() error {
	for _, step := range []struct {
		script string
		env    []string
	}{{"down.sh", nil}, {"up.sh", []string{"KAFKA_KEEP_DATA=1"}}} {
		cmd := exec.Command(filepath.Join(*scripts, step.script))
		cmd.Env = append(os.Environ(), step.env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", step.script, err, out)
		}
	}
	return nil
}

// readDLQ adds every dead-letter record to dead, by source partition and
// offset, with its kind.
func readDLQ(ctx context.Context, topic string, dead map[key]string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	want := int64(0)
	ends.Each(func(e kadm.ListedOffset) { want += e.Offset })
	got := int64(0)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for got < want && pctx.Err() == nil {
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			got++
			var p, o, kind string
			omitted := false
			for _, hd := range r.Headers {
				switch hd.Key {
				case "dlq.original.partition":
					p = string(hd.Value)
				case "dlq.original.offset":
					o = string(hd.Value)
				case "dlq.error.kind":
					kind = string(hd.Value)
				case "dlq.value.omitted":
					omitted = true
				}
			}
			pi, _ := strconv.Atoi(p)
			oi, _ := strconv.ParseInt(o, 10, 64)
			if omitted {
				kind += " (value omitted)"
			}
			dead[key{int32(pi), oi}] = kind
		})
	}
	return nil
}

// keyOf is the key number of record seq: its own, or one of -keys.
func keyOf(seq int) int {
	n := *keys
	if n == 0 && *order == "key" {
		n = 500
	}
	if n <= 0 {
		return seq
	}
	return seq % n
}

// setShareLock sets the share group's acquisition lock duration
// (IncrementalAlterConfigs on the GROUP resource).
func setShareLock(ctx context.Context, cl *kgo.Client, group string, lock time.Duration) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeGroupConfig
	res.ResourceName = group
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Op = "share.record.lock.duration.ms", kmsg.IncrementalAlterConfigOpSet
	cfg.Value = kmsg.StringPtr(strconv.FormatInt(lock.Milliseconds(), 10))
	res.Configs = append(res.Configs, cfg)
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("setting %s's share.record.lock.duration.ms: %w", group, err)
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return fmt.Errorf("setting %s's share.record.lock.duration.ms: %w", group, err)
		}
	}
	return nil
}
