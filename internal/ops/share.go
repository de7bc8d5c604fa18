package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A share group (KIP-932) has no committed offsets: its position in a
// partition is the share-partition start offset (every record below it is
// acknowledged or archived), and any number of members may be assigned a
// partition. The functions here are the share-group versions of Group,
// Offsets, Plan and Apply; PartitionOffsets.Committed holds the start
// offset, and Member every assigned member, comma separated.

// ShareGroup describes a share group's members and which members are
// assigned which partition. A group that does not exist has no members.
func ShareGroup(ctx context.Context, adm *kadm.Client, group string) (members []Member, owners map[string]map[int32]string, err error) {
	owners = map[string]map[int32]string{}
	gs, err := adm.DescribeShareGroups(ctx, group)
	if err == nil {
		err = gs[group].Err
	}
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		return nil, owners, nil
	case err != nil:
		return nil, nil, fmt.Errorf("describing share group %s: %w", group, err)
	}
	for _, m := range gs[group].Members {
		mb := Member{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
		members = append(members, mb)
		for t, ps := range m.Assignment {
			if owners[t] == nil {
				owners[t] = map[int32]string{}
			}
			for p := range ps {
				if o := owners[t][p]; o != "" {
					owners[t][p] = o + "," + shortMember(mb)
				} else {
					owners[t][p] = shortMember(mb)
				}
			}
		}
	}
	return members, owners, nil
}

// ShareOffsets is Offsets for a share group: per partition of topics, the
// group's start offset (-1: none yet), the end offset, the lag (as the
// brokers count it, else from the start offset), the next record's
// timestamp and the members assigned the partition.
func ShareOffsets(ctx context.Context, opts []kgo.Opt, group string, topics []string) ([]PartitionOffsets, []Member, error) {
	return offsetsOf(ctx, opts, func(adm *kadm.Client) ([]Member, map[string]map[int32]string, error) {
		return ShareGroup(ctx, adm, group)
	}, func(adm *kadm.Client) ([]PartitionOffsets, error) {
		return sharePositions(ctx, adm, group, topics)
	})
}

// sharePositions reads start and end offsets and the group's start offsets.
func sharePositions(ctx context.Context, adm *kadm.Client, group string, topics []string) ([]PartitionOffsets, error) {
	return positionsWith(ctx, adm, topics, func() (groupOffsets, error) {
		ds, err := adm.DescribeShareGroupOffsets(ctx, group)
		if err == nil {
			err = ds[group].Err
		}
		if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			return nil, fmt.Errorf("describing share group %s's start offsets: %w", group, err)
		}
		offs := ds[group].Offsets
		return func(t string, p int32) (int64, int64) {
			if o, ok := offs.Lookup(t, p); ok && o.Err == nil && o.StartOffset >= 0 {
				return o.StartOffset, o.Lag
			}
			return -1, -1
		}, nil
	})
}

// ApplyShare moves the share group's start offsets to the plan's new
// offsets (AlterShareGroupOffsets, which also forgets the records'
// delivery counts), refusing with *ErrActiveMembers while it has members
// (the brokers refuse too: NON_EMPTY_GROUP).
func ApplyShare(ctx context.Context, adm *kadm.Client, group string, plan []Move) error {
	members, _, err := ShareGroup(ctx, adm, group)
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
	rs, err := adm.AlterShareGroupOffsets(ctx, group, os)
	if errors.Is(err, kerr.NonEmptyGroup) {
		// A member joined between the look and the change.
		members, _, _ := ShareGroup(ctx, adm, group)
		return &ErrActiveMembers{Group: group, Members: members}
	}
	if err != nil {
		return fmt.Errorf("altering share group %s's start offsets: %w", group, err)
	}
	var failed []string
	rs.EachError(func(t string, p int32, err error) {
		failed = append(failed, fmt.Sprintf("%s/%d: %v", t, p, err))
	})
	if len(failed) > 0 {
		slices.Sort(failed)
		return fmt.Errorf("altering share group %s's start offsets: %s", group, strings.Join(failed, "; "))
	}
	return nil
}
