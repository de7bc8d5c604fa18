package ops

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// PartitionOffsets is one line of `consumer offsets`.
type PartitionOffsets struct {
	Topic     string
	Partition int32
	Committed int64 // -1: nothing committed
	Start     int64 // the log start offset
	End       int64 // the end offset (high watermark)
	// Lag is what remains to consume: from the committed offset, or from
	// the start when nothing is committed.
	Lag int64
	// Next is the timestamp of the next record to be consumed; zero when
	// there is none (no lag) or it could not be read.
	Next   time.Time
	Member string // the member that owns the partition, "" if none
}

// Member is an active member of a group.
type Member struct {
	ID, InstanceID, ClientID, Host string
}

func (m Member) String() string {
	s := m.ID
	if m.InstanceID != "" {
		s = m.InstanceID + " (" + m.ID + ")"
	}
	return s + " on " + m.Host + " (client " + m.ClientID + ")"
}

// Group describes a group's members and who owns which partition, for
// either group protocol.
func Group(ctx context.Context, adm *kadm.Client, group string) (members []Member, owners map[string]map[int32]string, err error) {
	gs, err := adm.DescribeGroups(ctx, group)
	if err == nil {
		err = gs[group].Err
	}
	// For a group of the consumer protocol (KIP-848), as for no group at
	// all, Kafka 4 answers GROUP_ID_NOT_FOUND and Kafka 3.7 to 3.9 a dead
	// group without members.
	if errors.Is(err, kerr.GroupIDNotFound) || (err == nil && gs[group].State == "Dead") {
		return consumerGroup(ctx, adm, group)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("describing group %s: %w", group, err)
	}
	owners = map[string]map[int32]string{}
	for _, m := range gs[group].Members {
		mb := member(m.MemberID, m.ClientID, m.ClientHost, m.InstanceID)
		members = append(members, mb)
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range ca.Topics {
				own(owners, mb, t.Topic, t.Partitions...)
			}
		}
	}
	return members, owners, nil
}

// consumerGroup describes a group of the consumer protocol (KIP-848). A
// group that does not exist, or brokers that do not serve the request
// (before Kafka 3.7), mean no members.
func consumerGroup(ctx context.Context, adm *kadm.Client, group string) (members []Member, owners map[string]map[int32]string, err error) {
	owners = map[string]map[int32]string{}
	if !servesConsumerGroups(ctx, adm) {
		return nil, owners, nil
	}
	cs, err := adm.DescribeConsumerGroups(ctx, group)
	if err == nil {
		err = cs[group].Err
	}
	switch {
	case errors.Is(err, kerr.GroupIDNotFound), errors.Is(err, kerr.UnsupportedVersion):
		// UNSUPPORTED_VERSION: a 3.x broker that knows the request
		// but does not run the consumer protocol.
		return nil, owners, nil
	case err != nil:
		return nil, nil, fmt.Errorf("describing consumer group %s: %w", group, err)
	}
	for _, m := range cs[group].Members {
		mb := member(m.MemberID, m.ClientID, m.ClientHost, m.InstanceID)
		members = append(members, mb)
		for t, ps := range m.Assignment {
			for p := range ps {
				own(owners, mb, t, p)
			}
		}
	}
	return members, owners, nil
}

// servesConsumerGroups reports whether the brokers serve
// ConsumerGroupDescribe; if their versions cannot be read, the describe
// itself is left to answer.
func servesConsumerGroups(ctx context.Context, adm *kadm.Client) bool {
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		return true
	}
	for _, v := range vs {
		if v.Err == nil {
			_, ok := v.KeyMaxVersion(kmsg.ConsumerGroupDescribe.Int16())
			return ok
		}
	}
	return true
}

func member(id, client, host string, instance *string) Member {
	m := Member{ID: id, ClientID: client, Host: host}
	if instance != nil {
		m.InstanceID = *instance
	}
	return m
}

// own records that m owns the partitions ps of topic t.
func own(owners map[string]map[int32]string, m Member, t string, ps ...int32) {
	if owners[t] == nil {
		owners[t] = map[int32]string{}
	}
	for _, p := range ps {
		owners[t][p] = shortMember(m)
	}
}

func shortMember(m Member) string {
	if m.InstanceID != "" {
		return m.InstanceID + "@" + m.Host
	}
	return m.ClientID + "@" + m.Host
}

// Offsets lists, per partition of topics, the group's committed offset, the
// end offset, the lag, the timestamp of the next record and its owner.
// opts build the client that reads the next records.
func Offsets(ctx context.Context, opts []kgo.Opt, group string, topics []string) ([]PartitionOffsets, []Member, error) {
	return offsetsOf(ctx, opts, func(adm *kadm.Client) ([]Member, map[string]map[int32]string, error) {
		return Group(ctx, adm, group)
	}, func(adm *kadm.Client) ([]PartitionOffsets, error) {
		return positions(ctx, adm, group, topics)
	})
}

// offsetsOf is Offsets with the group's members (and the partitions' owners)
// and its positions read by the functions given: a consumer group's or a
// share group's.
func offsetsOf(ctx context.Context, opts []kgo.Opt,
	group func(*kadm.Client) ([]Member, map[string]map[int32]string, error),
	positions func(*kadm.Client) ([]PartitionOffsets, error),
) ([]PartitionOffsets, []Member, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	members, owners, err := group(adm)
	if err != nil {
		return nil, nil, err
	}
	pos, err := positions(adm)
	if err != nil {
		return nil, nil, err
	}
	for i := range pos {
		pos[i].Member = owners[pos[i].Topic][pos[i].Partition]
	}
	readNext(ctx, opts, pos)
	return pos, members, nil
}

// positions reads committed, start and end offsets.
func positions(ctx context.Context, adm *kadm.Client, group string, topics []string) ([]PartitionOffsets, error) {
	return positionsWith(ctx, adm, topics, func() (groupOffsets, error) {
		committed, err := adm.FetchOffsetsForTopics(ctx, group, topics...)
		if err == nil {
			err = committed.Error()
		}
		if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			return nil, fmt.Errorf("fetching group %s's committed offsets: %w", group, err)
		}
		return func(t string, p int32) (int64, int64) {
			if c, ok := committed.Lookup(t, p); ok && c.Err == nil && c.At >= 0 {
				return c.At, -1
			}
			return -1, -1
		}, nil
	})
}

// groupOffsets is a group's position in a partition (-1: none) and, when
// the brokers count it, its lag (-1: count it from the position).
type groupOffsets func(topic string, partition int32) (at, lag int64)

// positionsWith reads start and end offsets and the group's positions.
func positionsWith(ctx context.Context, adm *kadm.Client, topics []string, group func() (groupOffsets, error)) ([]PartitionOffsets, error) {
	td, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("describing topics: %w", err)
	}
	for _, t := range topics {
		if d, ok := td[t]; !ok || d.Err != nil {
			if ok && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
				return nil, fmt.Errorf("describing topic %s: %w", t, d.Err)
			}
			return nil, fmt.Errorf("topic %s does not exist", t)
		}
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}
	at, err := group()
	if err != nil {
		return nil, err
	}
	var pos []PartitionOffsets
	for _, t := range slices.Sorted(slices.Values(topics)) {
		for _, p := range slices.Sorted(maps.Keys(td[t].Partitions)) {
			s, _ := starts.Lookup(t, p)
			e, _ := ends.Lookup(t, p)
			po := PartitionOffsets{Topic: t, Partition: p, Start: s.Offset, End: e.Offset}
			var lag int64
			po.Committed, lag = at(t, p)
			po.Lag = max(po.End-max(po.Committed, po.Start), 0)
			if lag >= 0 {
				po.Lag = lag
			}
			pos = append(pos, po)
		}
	}
	return pos, nil
}

// readNext reads the record at each lagging partition's next offset, for
// its timestamp, within a few seconds; what it cannot read stays zero.
func readNext(ctx context.Context, opts []kgo.Opt, pos []PartitionOffsets) {
	want := map[string]map[int32]kgo.Offset{}
	idx := map[string]map[int32]int{}
	n := 0
	for i, po := range pos {
		if po.Lag == 0 {
			continue
		}
		at := max(po.Committed, po.Start)
		if want[po.Topic] == nil {
			want[po.Topic] = map[int32]kgo.Offset{}
			idx[po.Topic] = map[int32]int{}
		}
		want[po.Topic][po.Partition] = kgo.NewOffset().At(at)
		idx[po.Topic][po.Partition] = i
		n++
	}
	if n == 0 {
		return
	}
	cl, err := kgo.NewClient(append(slices.Clone(opts), kgo.ConsumePartitions(want), kgo.FetchMaxPartitionBytes(1<<16))...)
	if err != nil {
		return
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for n > 0 && rctx.Err() == nil {
		fetches := cl.PollFetches(rctx)
		rm := map[string][]int32{}
		fetches.EachRecord(func(r *kgo.Record) {
			i, ok := idx[r.Topic][r.Partition]
			if !ok || !pos[i].Next.IsZero() {
				return
			}
			pos[i].Next = r.Timestamp
			rm[r.Topic] = append(rm[r.Topic], r.Partition)
			n--
		})
		if len(rm) > 0 {
			cl.PauseFetchPartitions(rm)
		}
	}
}

// Count is n and the noun, plural unless n is 1: "1 member", "2 members".
func Count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// Target is where `consumer offsets reset --to` moves a group.
type Target struct {
	Earliest, Latest bool
	Time             time.Time // when set: the first record at or after it
	Offset           int64     // otherwise: this offset
	text             string
}

func (t Target) String() string { return t.text }

// ParseTarget reads --to: earliest, latest, an RFC 3339 time, a duration
// before now (as redrive --since takes it, such as 2h) or an offset.
func ParseTarget(s string) (Target, error) { return ParseTargetAt(s, time.Now()) }

// ParseTargetAt is ParseTarget with a duration counted back from now.
func ParseTargetAt(s string, now time.Time) (Target, error) {
	t := Target{text: s}
	switch strings.ToLower(s) {
	case "earliest":
		t.Earliest = true
		return t, nil
	case "latest":
		t.Latest = true
		return t, nil
	}
	if at, err := time.Parse(time.RFC3339Nano, s); err == nil {
		t.Time = at
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		t.Offset = n
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		t.Time = now.Add(-d)
		t.text = s + " ago (" + t.Time.UTC().Format(TimeFormat) + ")"
		return t, nil
	}
	return t, fmt.Errorf("--to %q: expected earliest, latest, an RFC 3339 time such as 2026-11-22T11:30:00Z, a duration ago such as 2h, or an offset >= 0", s)
}

// TimeFormat is how the commands print a time: UTC, to the millisecond
// (Kafka's precision), always of the same width.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Move is one partition's line of a reset plan.
type Move struct {
	Topic     string
	Partition int32
	Old       int64 // -1: nothing committed
	New       int64
	Start     int64
	End       int64
}

// Delta is how many records the move replays (> 0) or skips (< 0) for the
// group; a group with nothing committed counts from the log start.
func (m Move) Delta() int64 {
	old := max(m.Old, m.Start)
	return old - m.New
}

// Plan computes where a reset moves the group in each selected partition
// (partition < 0: all). An offset outside a partition's log is refused.
func Plan(ctx context.Context, adm *kadm.Client, group string, topics []string, partition int32, to Target) ([]Move, error) {
	pos, err := positions(ctx, adm, group, topics)
	if err != nil {
		return nil, err
	}
	return plan(ctx, adm, pos, topics, partition, to)
}

// SharePlan is Plan for a share group: Old is the share-partition start
// offset.
func SharePlan(ctx context.Context, adm *kadm.Client, group string, topics []string, partition int32, to Target) ([]Move, error) {
	pos, err := sharePositions(ctx, adm, group, topics)
	if err != nil {
		return nil, err
	}
	return plan(ctx, adm, pos, topics, partition, to)
}

func plan(ctx context.Context, adm *kadm.Client, pos []PartitionOffsets, topics []string, partition int32, to Target) ([]Move, error) {
	var err error
	var byTime kadm.ListedOffsets
	if !to.Time.IsZero() {
		byTime, err = adm.ListOffsetsAfterMilli(ctx, to.Time.UnixMilli(), topics...)
		if err == nil {
			err = byTime.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("listing offsets at %s: %w", to.Time.Format(time.RFC3339), err)
		}
	}
	var plan []Move
	found := false
	for _, po := range pos {
		if partition >= 0 && po.Partition != partition {
			continue
		}
		found = true
		m := Move{Topic: po.Topic, Partition: po.Partition, Old: po.Committed, Start: po.Start, End: po.End}
		switch {
		case to.Earliest:
			m.New = po.Start
		case to.Latest:
			m.New = po.End
		case !to.Time.IsZero():
			l, ok := byTime.Lookup(po.Topic, po.Partition)
			if !ok || l.Offset < 0 {
				m.New = po.End
			} else {
				m.New = l.Offset
			}
		default:
			if to.Offset < po.Start || to.Offset > po.End {
				return nil, fmt.Errorf("%s partition %d: offset %d is outside the partition's records [%d, %d]", po.Topic, po.Partition, to.Offset, po.Start, po.End)
			}
			m.New = to.Offset
		}
		plan = append(plan, m)
	}
	if !found {
		return nil, fmt.Errorf("no partition %d in %s", partition, strings.Join(topics, ", "))
	}
	return plan, nil
}

// ErrActiveMembers refuses a reset while the group has members: their next
// commit would undo it, and the broker refuses a commit from outside the
// generation anyway.
type ErrActiveMembers struct {
	Group   string
	Members []Member
}

func (e *ErrActiveMembers) Error() string {
	names := make([]string, len(e.Members))
	for i, m := range e.Members {
		names[i] = m.String()
	}
	return fmt.Sprintf("group %s has %s; stop them first (scale the deployment to 0): %s",
		e.Group, Count(len(e.Members), "active member"), strings.Join(names, "; "))
}

// Apply commits the plan's new offsets for group, refusing with
// *ErrActiveMembers while it has members.
func Apply(ctx context.Context, adm *kadm.Client, group string, plan []Move) error {
	members, _, err := Group(ctx, adm, group)
	if err != nil {
		return err
	}
	if len(members) > 0 {
		return &ErrActiveMembers{Group: group, Members: members}
	}
	os := kadm.Offsets{}
	for _, m := range plan {
		os.Add(kadm.Offset{Topic: m.Topic, Partition: m.Partition, At: m.New, LeaderEpoch: -1})
	}
	// As a client outside of any generation: the group has no members.
	resp, err := adm.CommitOffsets(ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("committing to group %s: %w", group, err)
	}
	return nil
}
