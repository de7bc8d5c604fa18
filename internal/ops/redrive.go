// Package ops holds the operator commands that act on the cluster for a
// consumer group: redriving the dead-letter topic to the topics its records
// came from, and listing and resetting the group's committed offsets. Each
// works with a client built from the service's own options
// (kafkaclient.Options), so that it authenticates as the service does.
//
// It parses no flags and prints no tables: service/ does. It holds no state
// between calls; progress lives in the cluster (a redrive's own consumer
// group).
package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/internal/dlq"
)

// HeaderRedriveCount counts how many times a record was redriven from a
// dead-letter topic. It is the only dlq.* header a redriven record keeps,
// so that the dead-letter copy of a redriven record that fails again
// carries it, and the loop guard can stop a record that never succeeds.
const HeaderRedriveCount = "dlq.redrive.count"

// DefaultMaxRedrives is --max-redrives' default.
const DefaultMaxRedrives = 3

// DefaultRedriveBatch is how many dead-letter records are read, produced
// and committed at a time: what a resumed redrive may send twice.
const DefaultRedriveBatch = 500

// AnyGroup as Redrive.Group redrives the records of every group.
const AnyGroup = "*"

// Redrive says what to redrive and how.
type Redrive struct {
	From          string    // the dead-letter topic
	To            string    // the destination; "" sends each record to its dlq.original.topic
	Group         string    // only records whose dlq.consumer.group is this; AnyGroup for all
	Kinds         []string  // only these dlq.error.kind values; empty: all
	Since, Until  time.Time // only records whose dlq.failed.at is within [Since, Until]; zero: unbounded
	Partitions    []int32   // only these partitions of From; empty: all
	Limit         int64     // stop after sending this many; 0: no limit
	MaxRedrives   int       // skip records already redriven this many times
	DryRun        bool      // send nothing, commit nothing
	ProgressGroup string    // where progress is committed
	FromStart     bool      // ignore the progress committed before
	Batch         int       // records per read-produce-commit round; 0: DefaultRedriveBatch
}

// RedriveDeps is what a redrive runs with.
type RedriveDeps struct {
	Opts []kgo.Opt // the connection options (kafkaclient.Options)
	// Report receives one line per record not sent for a reason the
	// operator must know (the loop guard, a record that cannot be
	// redriven) and, in a dry run, per record that would be sent.
	Report io.Writer
	// Progress, if set, is called after each round with the records read
	// and the records to read in all.
	Progress func(done, total int64)
	// Started, if set, is called once the plan is known.
	Started func(p RedrivePlan)
}

// RedrivePlan is where a redrive reads, fixed at its start.
type RedrivePlan struct {
	From  map[int32]int64 // per partition, the first offset to read
	End   map[int32]int64 // per partition, the end offset at the start
	Total int64           // records to read in all
}

// RedriveSummary counts what a redrive did.
type RedriveSummary struct {
	Read        int64 // dead-letter records read
	Sent        int64 // produced and acknowledged (or, in a dry run, that would be)
	LoopGuarded int64 // skipped: already redriven MaxRedrives times
	Invalid     int64 // skipped: no destination, or the value was left out of the copy
	NotMatching int64 // passed over: not matching the filters
	Limited     bool  // stopped at Limit
	DryRun      bool  // Sent counts what would have been sent
	// Running, in a dry run, is the redrive that would refuse a real
	// run now; nil if none.
	Running *ErrRedriveRunning
}

func (s RedriveSummary) String() string {
	sent := fmt.Sprintf("%d sent", s.Sent)
	if s.DryRun {
		sent = fmt.Sprintf("would send %d", s.Sent)
	}
	out := fmt.Sprintf("%s, %d skipped by the loop guard, %d not redrivable, %d not matching the filters, of %d read",
		sent, s.LoopGuarded, s.Invalid, s.NotMatching, s.Read)
	if s.Limited {
		out += " (stopped at --limit)"
	}
	if s.Running != nil {
		out += "; a real run would be refused now: " + s.Running.Error()
	}
	return out
}

type pinKey struct{}

// pinPartitioner sends a record to the partition pinned in its context
// when the destination has it (a record redriven to its own topic goes
// back to its original partition), and others as the default partitioner
// does (by key).
type pinPartitioner struct{ def kgo.Partitioner }

func (p pinPartitioner) ForTopic(t string) kgo.TopicPartitioner {
	return pinTopic{p.def.ForTopic(t)}
}

type pinTopic struct{ def kgo.TopicPartitioner }

func (p pinTopic) RequiresConsistency(r *kgo.Record) bool {
	if _, ok := pinned(r); ok {
		return true
	}
	return p.def.RequiresConsistency(r)
}

func (p pinTopic) Partition(r *kgo.Record, n int) int {
	if pp, ok := pinned(r); ok && int(pp) < n {
		return int(pp)
	}
	return p.def.Partition(r, n)
}

func pinned(r *kgo.Record) (int32, bool) {
	if r.Context == nil {
		return 0, false
	}
	p, ok := r.Context.Value(pinKey{}).(int32)
	return p, ok
}

// Run redrives: it reads the dead-letter topic from the progress committed
// in ProgressGroup (or its start) up to its end offsets as of now, sends
// each matching record to its destination with its original key, value and
// headers (dlq.* headers removed, HeaderRedriveCount incremented), and
// after each round commits the progress, only once every copy of the round
// was acknowledged (acks=all, idempotent). An interrupted redrive thus
// resumes where it stopped and sends at most one round again.
//
// It runs as the only member of ProgressGroup and commits within its
// generation: while another redrive is a member, it returns
// *ErrRedriveRunning before reading anything (a dry run, which commits
// nothing, joins no group and only reports it in the summary).
//
// The progress passes over records that do not match the filters: a
// later redrive resumes after them (FromStart reads them again).
func (o Redrive) Run(ctx context.Context, d RedriveDeps) (RedriveSummary, error) {
	sum := RedriveSummary{DryRun: o.DryRun}
	if o.Batch <= 0 {
		o.Batch = DefaultRedriveBatch
	}
	if d.Report == nil {
		d.Report = io.Discard
	}
	limits := &sync.Map{} // destination topic -> max.message.bytes
	opts := append(slices.Clone(d.Opts),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(time.Minute),
		kgo.RecordPartitioner(pinPartitioner{kgo.StickyKeyPartitioner(nil)}),
		kgo.ProducerBatchMaxBytesFn(func(t string) int32 {
			if n, ok := limits.Load(t); ok {
				return n.(int32)
			}
			return dlq.DefaultMaxMessageBytes
		}),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return sum, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	// A dry run sends and commits nothing, so it does not take the
	// progress group: it only says whether a real run would be refused.
	var member *progressMember
	if o.DryRun {
		if members, _, err := Group(ctx, adm, o.ProgressGroup); err == nil && len(members) > 0 {
			sum.Running = &ErrRedriveRunning{From: o.From, Group: o.ProgressGroup, Members: members}
		}
	} else {
		// The topic and partitions are checked before joining: a
		// group for a topic that does not exist assigns nothing.
		if _, err := o.plan(ctx, adm); err != nil {
			return sum, err
		}
		if member, err = joinProgress(ctx, d.Opts, adm, o.ProgressGroup, o.From); err != nil {
			return sum, err
		}
		defer member.cl.Close()
	}

	plan, err := o.plan(ctx, adm)
	if err != nil {
		return sum, err
	}
	if d.Started != nil {
		d.Started(plan)
	}
	if plan.Total == 0 {
		return sum, nil
	}
	consume := map[int32]kgo.Offset{}
	for p, from := range plan.From {
		consume[p] = kgo.NewOffset().At(from)
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{o.From: consume})

	next := maps.Clone(plan.From)
	for len(consume) > 0 && !sum.Limited {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		fetches := cl.PollRecords(pctx, o.Batch)
		cancel()
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		if err := fetchError(fetches); err != nil {
			return sum, err
		}
		// Nothing of a round is sent once the membership was lost.
		if member != nil {
			if err := member.check(); err != nil {
				return sum, err
			}
		}
		if fetches.NumRecords() == 0 {
			return sum, fmt.Errorf("no records read from %s for 30s below its end offsets (partitions %v)", o.From, slices.Sorted(maps.Keys(consume)))
		}
		var out []*kgo.Record
		round := map[int32]int64{}
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			for _, r := range fp.Records {
				if sum.Limited || r.Offset < next[r.Partition] || r.Offset >= plan.End[r.Partition] {
					continue
				}
				if o.Limit > 0 && sum.Sent >= o.Limit {
					sum.Limited = true
					continue
				}
				sum.Read++
				if c := o.decide(r, &sum, d.Report); c != nil {
					out = append(out, c)
				}
				next[r.Partition] = r.Offset + 1
				round[r.Partition] = r.Offset + 1
			}
		})
		if !o.DryRun && len(out) > 0 {
			if err := o.learnLimits(ctx, adm, out, limits); err != nil {
				return sum, err
			}
			for _, res := range cl.ProduceSync(ctx, out...) {
				if res.Err != nil {
					sum.Sent -= int64(len(out)) // the round is sent again on resume
					return sum, fmt.Errorf("producing to %s: %w", res.Record.Topic, res.Err)
				}
			}
		}
		if !o.DryRun && len(round) > 0 {
			if err := member.commit(ctx, round); err != nil {
				return sum, err
			}
		}
		var remove []int32
		for p := range consume {
			if next[p] >= plan.End[p] {
				remove = append(remove, p)
				delete(consume, p)
			}
		}
		if len(remove) > 0 {
			cl.RemoveConsumePartitions(map[string][]int32{o.From: remove})
		}
		var done int64
		for p, from := range plan.From {
			done += next[p] - from
		}
		if d.Progress != nil {
			d.Progress(done, plan.Total)
		}
	}
	return sum, nil
}

// fetchError returns the first error of fetches that is not a timeout of
// the poll.
func fetchError(fetches kgo.Fetches) error {
	for _, fe := range fetches.Errors() {
		if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
			continue
		}
		return fmt.Errorf("reading %s partition %d: %w", fe.Topic, fe.Partition, fe.Err)
	}
	return nil
}

// plan reads where to start and stop in each partition.
func (o Redrive) plan(ctx context.Context, adm *kadm.Client) (RedrivePlan, error) {
	plan := RedrivePlan{From: map[int32]int64{}, End: map[int32]int64{}}
	td, err := adm.ListTopics(ctx, o.From)
	if err != nil {
		return plan, fmt.Errorf("describing %s: %w", o.From, err)
	}
	t, ok := td[o.From]
	if !ok || errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
		return plan, fmt.Errorf("dead-letter topic %s does not exist", o.From)
	}
	if t.Err != nil {
		return plan, fmt.Errorf("describing %s: %w", o.From, t.Err)
	}
	for _, p := range o.Partitions {
		if _, ok := t.Partitions[p]; !ok {
			return plan, fmt.Errorf("%s has no partition %d (it has %d)", o.From, p, len(t.Partitions))
		}
	}
	starts, err := adm.ListStartOffsets(ctx, o.From)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return plan, fmt.Errorf("listing %s's start offsets: %w", o.From, err)
	}
	ends, err := adm.ListEndOffsets(ctx, o.From)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return plan, fmt.Errorf("listing %s's end offsets: %w", o.From, err)
	}
	var committed kadm.OffsetResponses
	if !o.FromStart {
		committed, err = adm.FetchOffsets(ctx, o.ProgressGroup)
		if err == nil {
			err = committed.Error()
		}
		if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			return plan, fmt.Errorf("reading the progress committed in group %s: %w", o.ProgressGroup, err)
		}
	}
	for p := range t.Partitions {
		if len(o.Partitions) > 0 && !slices.Contains(o.Partitions, p) {
			continue
		}
		s, _ := starts.Lookup(o.From, p)
		e, _ := ends.Lookup(o.From, p)
		from := s.Offset
		if c, ok := committed.Lookup(o.From, p); ok && c.Err == nil && c.At > from {
			from = c.At
		}
		if from >= e.Offset {
			continue
		}
		plan.From[p], plan.End[p] = from, e.Offset
		plan.Total += e.Offset - from
	}
	return plan, nil
}

// decide returns the copy of a dead-letter record to send, or nil when it
// is not sent (counted in sum, and reported when the operator must know).
func (o Redrive) decide(r *kgo.Record, sum *RedriveSummary, report io.Writer) *kgo.Record {
	h := map[string]string{}
	for _, hd := range r.Headers {
		h[hd.Key] = string(hd.Value)
	}
	if !o.matches(h) {
		sum.NotMatching++
		return nil
	}
	where := fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset)
	dest := o.To
	if dest == "" {
		dest = h[dlq.HeaderTopic]
	}
	if dest == "" {
		sum.Invalid++
		fmt.Fprintf(report, "skipped %s: no %s header (not a dead-letter record?); use --to to name its destination\n", where, dlq.HeaderTopic)
		return nil
	}
	if size, ok := h[dlq.HeaderValueOmitted]; ok {
		sum.Invalid++
		fmt.Fprintf(report, "skipped %s: its value (%s bytes) was left out of the dead-letter copy; the original is %s/%s@%s\n",
			where, size, h[dlq.HeaderTopic], h[dlq.HeaderPartition], h[dlq.HeaderOffset])
		return nil
	}
	if n, ok := h[dlq.HeaderHeadersOmitted]; ok {
		sum.Invalid++
		fmt.Fprintf(report, "skipped %s: its headers (%s) were left out of the dead-letter copy; the original is %s/%s@%s\n",
			where, n, h[dlq.HeaderTopic], h[dlq.HeaderPartition], h[dlq.HeaderOffset])
		return nil
	}
	count, _ := strconv.Atoi(h[HeaderRedriveCount])
	if count >= o.MaxRedrives {
		sum.LoopGuarded++
		fmt.Fprintf(report, "skipped %s: already redriven %d times (--max-redrives %d); %s: %s\n",
			where, count, o.MaxRedrives, h[dlq.HeaderKind], h[dlq.HeaderMessage])
		return nil
	}
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+1)
	for _, hd := range r.Headers {
		if !strings.HasPrefix(hd.Key, "dlq.") {
			headers = append(headers, hd)
		}
	}
	headers = append(headers, kgo.RecordHeader{Key: HeaderRedriveCount, Value: strconv.AppendInt(nil, int64(count+1), 10)})
	c := &kgo.Record{Topic: dest, Key: r.Key, Value: r.Value, Headers: headers}
	if p, err := strconv.ParseInt(h[dlq.HeaderPartition], 10, 32); err == nil && o.To == "" {
		c.Context = context.WithValue(context.Background(), pinKey{}, int32(p))
	}
	sum.Sent++
	if o.DryRun {
		fmt.Fprintf(report, "would send %s to %s (original %s/%s@%s, %s, failed at %s, redrive %d)\n",
			where, dest, h[dlq.HeaderTopic], h[dlq.HeaderPartition], h[dlq.HeaderOffset], h[dlq.HeaderKind], h[dlq.HeaderFailedAt], count+1)
	}
	return c
}

// matches applies the filters to a record's headers.
func (o Redrive) matches(h map[string]string) bool {
	if o.Group != AnyGroup && h[dlq.HeaderGroup] != o.Group {
		return false
	}
	if len(o.Kinds) > 0 && !slices.Contains(o.Kinds, h[dlq.HeaderKind]) {
		return false
	}
	if o.Since.IsZero() && o.Until.IsZero() {
		return true
	}
	at, err := time.Parse(time.RFC3339Nano, h[dlq.HeaderFailedAt])
	if err != nil {
		return false
	}
	return (o.Since.IsZero() || !at.Before(o.Since)) && (o.Until.IsZero() || !at.After(o.Until))
}

// learnLimits reads the max.message.bytes of destinations not seen yet, so
// that the producer's batches fit them. A configuration that cannot be
// read leaves Kafka's default.
func (o Redrive) learnLimits(ctx context.Context, adm *kadm.Client, out []*kgo.Record, limits *sync.Map) error {
	var unknown []string
	for _, r := range out {
		if _, ok := limits.Load(r.Topic); !ok && !slices.Contains(unknown, r.Topic) {
			unknown = append(unknown, r.Topic)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	td, err := adm.ListTopics(ctx, unknown...)
	if err != nil {
		return fmt.Errorf("describing %s: %w", strings.Join(unknown, ", "), err)
	}
	for _, t := range unknown {
		if d, ok := td[t]; !ok || d.Err != nil {
			return fmt.Errorf("destination topic %s does not exist or cannot be described; create it or use --to", t)
		}
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, unknown...)
	for _, t := range unknown {
		limits.Store(t, int32(dlq.DefaultMaxMessageBytes))
	}
	if err != nil {
		return nil
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			continue
		}
		for _, c := range rc.Configs {
			if c.Key == "max.message.bytes" && c.Value != nil {
				if n, err := strconv.ParseInt(*c.Value, 10, 32); err == nil {
					limits.Store(rc.Name, dlq.MaxMessageBytes(n))
				}
			}
		}
	}
	return nil
}

// ErrRedriveRunning refuses a redrive while another one runs as a member
// of the same progress group: both would read from the same committed
// progress and send every record twice.
type ErrRedriveRunning struct {
	From    string   // the dead-letter topic
	Group   string   // the progress group
	Members []Member // the other members: the redrive that runs
}

func (e *ErrRedriveRunning) Error() string {
	names := make([]string, len(e.Members))
	for i, m := range e.Members {
		names[i] = m.String()
	}
	return fmt.Sprintf("another redrive of %s is running (progress group %s has member %s); wait for it to finish, or stop it",
		e.From, e.Group, strings.Join(names, "; "))
}
