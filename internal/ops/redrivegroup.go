package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A redrive is a member of its progress group for as long as it runs, and
// commits its progress within the group's generation. The group's
// balancer gives every partition of a dead-letter topic to one member that
// reads it: the one that owned it in the generation before, else the
// group's leader if it reads the topic, else the first by member id. A
// redrive running thus keeps its topic while other members join and leave,
// the dead-letter topics of one group (one per source topic) are redriven
// side by side, and any other member of a topic gets nothing and is refused
// (ErrRedriveRunning). The member only holds the membership: the
// dead-letter records are read by the redrive's own client, from the plan.

// redriveProtocol names the balancer in JoinGroup; every member of a
// progress group is a redrive, so every one offers it.
const redriveProtocol = "msk-consumer-redrive"

// redriveJoinTimeout bounds the wait for the first assignment (Kafka's
// group.initial.rebalance.delay.ms, and a running redrive's rejoin).
const redriveJoinTimeout = 2 * time.Minute

// redriveCommitRetry bounds how long a commit refused during a rebalance
// (another redrive joining, then leaving when refused) is retried.
const redriveCommitRetry = 2 * time.Minute

// leaderBalancer assigns each topic's partitions to one member, as above.
type leaderBalancer struct{}

func (leaderBalancer) ProtocolName() string { return redriveProtocol }
func (leaderBalancer) IsCooperative() bool  { return false }

func (leaderBalancer) JoinGroupMetadata(topics []string, owned map[string][]int32, generation int32) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Version = 1 // OwnedPartitions
	m.Topics = topics
	for t, ps := range owned {
		m.OwnedPartitions = append(m.OwnedPartitions, kmsg.ConsumerMemberMetadataOwnedPartition{Topic: t, Partitions: ps})
	}
	return m.AppendTo(nil)
}

func (leaderBalancer) ParseSyncAssignment(a []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(a)
}

func (b leaderBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

func (leaderBalancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	plan := cb.NewPlan()
	leader := cb.Info().LeaderID
	owner := map[string]*kmsg.JoinGroupResponseMember{} // topic -> its member
	rank := func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata, t string) int {
		switch {
		case slices.ContainsFunc(meta.OwnedPartitions, func(o kmsg.ConsumerMemberMetadataOwnedPartition) bool {
			return o.Topic == t && len(o.Partitions) > 0
		}):
			return 0
		case m.MemberID == leader:
			return 1
		}
		return 2
	}
	best := map[string]int{}
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		for _, t := range meta.Topics {
			if _, ok := topics[t]; !ok {
				continue
			}
			r := rank(m, meta, t)
			if o, ok := owner[t]; !ok || r < best[t] || (r == best[t] && m.MemberID < o.MemberID) {
				owner[t], best[t] = m, r
			}
		}
	})
	for t, n := range topics {
		if o := owner[t]; o != nil {
			for p := range n {
				plan.AddPartition(o, t, p)
			}
		}
	}
	return plan
}

// progressMember is a redrive's membership of its progress group.
type progressMember struct {
	cl    *kgo.Client
	group string
	topic string
	// lost is set when the membership ended under the redrive (its
	// session expired, or the coordinator forgot it): the client joins
	// again, but another redrive may have taken the group meanwhile, so
	// the redrive may neither send nor commit any more.
	lost atomic.Bool
}

// testHookProgressLost, if set, runs when a progress member's membership
// was lost.
var testHookProgressLost atomic.Pointer[func()]

// check reports an error once the membership was lost.
func (m *progressMember) check() error {
	if m.lost.Load() {
		return fmt.Errorf("the redrive lost its membership of progress group %s (its session expired, or the coordinator forgot it), so another redrive may hold the group now; it stopped without sending more, and a new run resumes from the progress committed", m.group)
	}
	return nil
}

// joinProgress joins group as a redrive of topic and waits for the first
// assignment: it returns *ErrRedriveRunning when another redrive has the
// topic, and closes the member on any error.
func joinProgress(ctx context.Context, opts []kgo.Opt, adm *kadm.Client, group, topic string) (*progressMember, error) {
	assigned := make(chan bool, 1)
	m := &progressMember{group: group, topic: topic}
	cl, err := kgo.NewClient(append(slices.Clone(opts),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(leaderBalancer{}),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			select {
			case assigned <- len(a[topic]) > 0:
			default:
			}
		}),
		kgo.OnPartitionsLost(func(context.Context, *kgo.Client, map[string][]int32) {
			m.lost.Store(true)
			if hook := testHookProgressLost.Load(); hook != nil {
				(*hook)()
			}
		}),
	)...)
	if err != nil {
		return nil, err
	}
	m.cl = cl
	// The member never fetches: the redrive reads with its own client.
	cl.PauseFetchTopics(topic)
	jctx, cancel := context.WithTimeout(ctx, redriveJoinTimeout)
	defer cancel()
	// A failed join (authorization, an unreachable coordinator) is
	// reported by polling; the paused topic returns no records.
	polled := make(chan error, 1)
	go func() {
		for jctx.Err() == nil {
			if err := fetchError(cl.PollFetches(jctx)); err != nil {
				polled <- err
				return
			}
		}
	}()
	select {
	case owns := <-assigned:
		if owns {
			return m, nil
		}
		err := m.refusal(ctx, adm)
		cl.Close()
		return nil, err
	case err := <-polled:
		cl.Close()
		return nil, fmt.Errorf("joining progress group %s: %w", group, err)
	case <-jctx.Done():
		cl.Close()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("joining progress group %s: no assignment within %v", group, redriveJoinTimeout)
	}
}

// refusal names the other members of the group.
func (m *progressMember) refusal(ctx context.Context, adm *kadm.Client) error {
	self, _ := m.cl.GroupMetadata()
	e := &ErrRedriveRunning{From: m.topic, Group: m.group}
	members, _, err := Group(ctx, adm, m.group)
	if err != nil {
		return fmt.Errorf("%w (and describing the group: %w)", e, err)
	}
	for _, mb := range members {
		if mb.ID != self {
			e.Members = append(e.Members, mb)
		}
	}
	return e
}

// commit commits offsets of the topic within the member's generation,
// retrying while the group rebalances; it fails once the member is no
// longer in the group.
func (m *progressMember) commit(ctx context.Context, offsets map[int32]int64) error {
	os := map[string]map[int32]kgo.EpochOffset{m.topic: {}}
	for p, at := range offsets {
		os[m.topic][p] = kgo.EpochOffset{Epoch: -1, Offset: at}
	}
	deadline := time.Now().Add(redriveCommitRetry)
	for attempt := 1; ; attempt++ {
		// A member that was lost and joined again commits within its
		// new generation, over whatever another redrive committed.
		if err := m.check(); err != nil {
			return err
		}
		var cerr error
		m.cl.CommitOffsetsSync(ctx, os, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				cerr = err
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if err := kerr.ErrorForCode(p.ErrorCode); err != nil && cerr == nil {
						cerr = err
					}
				}
			}
		})
		if cerr == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !rebalancing(cerr) || time.Now().After(deadline) {
			return fmt.Errorf("committing to group %s: %w", m.group, cerr)
		}
		t := time.NewTimer(min(time.Duration(attempt)*250*time.Millisecond, 2*time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// rebalancing reports whether a commit was refused only because the group
// is between generations, or its coordinator is moving.
func rebalancing(err error) bool {
	for _, e := range []error{kerr.RebalanceInProgress, kerr.IllegalGeneration,
		kerr.NotCoordinator, kerr.CoordinatorNotAvailable, kerr.CoordinatorLoadInProgress} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
