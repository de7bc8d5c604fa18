// Package share holds what a share group (KIP-932) needs from the brokers
// beyond the client itself: the group's delivery limit and acquisition lock
// (read at start), its share.auto.offset.reset, and whether the brokers serve
// share groups at all. The pipeline's acknowledgements are not here: they sit
// behind the consume package's completion seam.
package share

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The broker defaults (Apache Kafka 4.2+ and MSK) used when a group's
// settings cannot be read.
const (
	DefaultDeliveryLimit = 5
	DefaultLockDuration  = 30 * time.Second
)

// The group configuration names (per group, unprefixed) and the broker
// configuration names that give a group without its own value its default.
const (
	GroupDeliveryLimit  = "share.delivery.count.limit"
	GroupLockDuration   = "share.record.lock.duration.ms"
	GroupAutoReset      = "share.auto.offset.reset"
	BrokerDeliveryLimit = "group.share.delivery.count.limit"
	BrokerLockDuration  = "group.share.record.lock.duration.ms"
)

// Source says where a setting came from.
type Source string

// The sources of a setting.
const (
	FromGroup   Source = "group"   // the group's own configuration
	FromBroker  Source = "broker"  // the brokers' group.share.* default
	FromDefault Source = "default" // neither could be read: Kafka's default
)

// Settings are the group's rules for its records.
type Settings struct {
	// DeliveryLimit is share.delivery.count.limit: a record delivered this
	// many times and not accepted is archived by the brokers.
	DeliveryLimit int32
	// LockDuration is share.record.lock.duration.ms: how long a member
	// holds a record it was given before the brokers give it to another.
	LockDuration time.Duration
	LimitFrom    Source
	LockFrom     Source
	// Warnings say what could not be read and why, one line each; the
	// service logs them at start and `consumer check` shows them.
	Warnings []string
}

// Read reads the group's delivery limit and lock duration: the group's own
// configuration (DescribeConfigs on the GROUP resource), else the brokers'
// group.share.* defaults, else Kafka's defaults (5, 30s) with a warning. It
// returns an error only when ctx ends.
func Read(ctx context.Context, r kmsg.Requestor, group string) (Settings, error) {
	s := Settings{DeliveryLimit: DefaultDeliveryLimit, LockDuration: DefaultLockDuration, LimitFrom: FromDefault, LockFrom: FromDefault}
	groupVals, gerr := describe(ctx, r, kmsg.ConfigResourceTypeGroupConfig, group, GroupDeliveryLimit, GroupLockDuration)
	if ctx.Err() != nil {
		return s, ctx.Err()
	}
	limit, lock := groupVals.get(GroupDeliveryLimit), groupVals.get(GroupLockDuration)
	// Kafka answers a group without its own value with the brokers'
	// default (source DEFAULT_CONFIG or a broker source); kfake with none.
	s.LimitFrom, s.LockFrom = groupVals.from(GroupDeliveryLimit), groupVals.from(GroupLockDuration)
	if limit == "" || lock == "" {
		brokerVals, berr := describe(ctx, r, kmsg.ConfigResourceTypeBroker, "", BrokerDeliveryLimit, BrokerLockDuration)
		if ctx.Err() != nil {
			return s, ctx.Err()
		}
		if limit == "" && brokerVals.get(BrokerDeliveryLimit) != "" {
			limit, s.LimitFrom = brokerVals.get(BrokerDeliveryLimit), FromBroker
		}
		if lock == "" && brokerVals.get(BrokerLockDuration) != "" {
			lock, s.LockFrom = brokerVals.get(BrokerLockDuration), FromBroker
		}
		if limit == "" || lock == "" {
			why := "not set"
			if err := errors.Join(gerr, berr); err != nil {
				why = err.Error()
			}
			s.Warnings = append(s.Warnings, fmt.Sprintf("share group %s: could not read %s/%s (%s); using Kafka's defaults where missing (%d deliveries, %s lock); this needs the DESCRIBE_CONFIGS operation on the group (or on the cluster for the brokers' defaults)",
				group, GroupDeliveryLimit, GroupLockDuration, why, DefaultDeliveryLimit, DefaultLockDuration))
		}
	}
	if limit != "" {
		n, err := strconv.ParseInt(limit, 10, 32)
		if err != nil || n < 1 {
			s.Warnings = append(s.Warnings, fmt.Sprintf("share group %s: %s %q is not a positive number; using %d", group, GroupDeliveryLimit, limit, DefaultDeliveryLimit))
			s.LimitFrom = FromDefault
		} else {
			s.DeliveryLimit = int32(n)
		}
	}
	if lock != "" {
		n, err := strconv.ParseInt(lock, 10, 64)
		if err != nil || n < 1 {
			s.Warnings = append(s.Warnings, fmt.Sprintf("share group %s: %s %q is not a positive number; using %s", group, GroupLockDuration, lock, DefaultLockDuration))
			s.LockFrom = FromDefault
		} else {
			s.LockDuration = time.Duration(n) * time.Millisecond
		}
	}
	return s, nil
}

// configs are configuration values by name, with whether each is the
// group's own (source GROUP_CONFIG).
type configs struct {
	vals map[string]string
	own  map[string]bool
}

func (c configs) get(k string) string { return c.vals[k] }

// from is where the value of k came from, given that it is not "".
func (c configs) from(k string) Source {
	switch {
	case c.vals[k] == "":
		return FromDefault
	case c.own[k]:
		return FromGroup
	}
	return FromBroker
}

// describe reads the named configurations of one resource; a missing or
// null value is "". The error says why nothing could be read.
func describe(ctx context.Context, r kmsg.Requestor, typ kmsg.ConfigResourceType, name string, keys ...string) (configs, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType = typ
	res.ResourceName = name
	res.ConfigNames = keys
	req.Resources = append(req.Resources, res)
	out := configs{vals: map[string]string{}, own: map[string]bool{}}
	resp, err := req.RequestWith(ctx, r)
	if err != nil {
		return out, err
	}
	for _, rr := range resp.Resources {
		if err := kerr.ErrorForCode(rr.ErrorCode); err != nil {
			return out, fmt.Errorf("describing the configuration of %s %q: %w", typ, name, err)
		}
		for _, c := range rr.Configs {
			if c.Value != nil && *c.Value != "" {
				out.vals[c.Name] = *c.Value
				out.own[c.Name] = c.Source == kmsg.ConfigSourceGroupConfig
			}
		}
	}
	return out, nil
}

// ErrNoPermission is returned by SetAutoReset when the brokers refused it.
var ErrNoPermission = errors.New("not allowed to alter the share group's configuration")

// AutoReset turns KAFKA_START_OFFSET (earliest, latest, or an RFC 3339 time)
// into share.auto.offset.reset (earliest, latest, by_duration:<ISO 8601>),
// as of now.
func AutoReset(start string, now time.Time) (string, error) {
	switch start {
	case "", "earliest":
		return "earliest", nil
	case "latest":
		return "latest", nil
	}
	t, err := time.Parse(time.RFC3339, start)
	if err != nil {
		return "", fmt.Errorf("start offset %q: expected earliest, latest or an RFC 3339 time", start)
	}
	d := now.Sub(t)
	if d < 0 {
		return "latest", nil // a time in the future: everything from now on
	}
	return "by_duration:" + isoDuration(d), nil
}

// isoDuration writes d as an ISO 8601 duration of whole seconds (PT…S),
// rounded up so that the record at the time itself is included.
func isoDuration(d time.Duration) string {
	secs := int64((d + time.Second - 1) / time.Second)
	var b strings.Builder
	b.WriteString("PT")
	if h := secs / 3600; h > 0 {
		b.WriteString(strconv.FormatInt(h, 10) + "H")
	}
	if m := secs / 60 % 60; m > 0 {
		b.WriteString(strconv.FormatInt(m, 10) + "M")
	}
	b.WriteString(strconv.FormatInt(secs%60, 10) + "S")
	return b.String()
}

// SetAutoReset sets the group's share.auto.offset.reset (IncrementalAlterConfigs
// on the GROUP resource). It applies only to partitions the group has no
// start offset for yet, which is what KAFKA_START_OFFSET means. A refusal
// wraps ErrNoPermission and names the permission.
func SetAutoReset(ctx context.Context, r kmsg.Requestor, group, value string) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeGroupConfig
	res.ResourceName = group
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name = GroupAutoReset
	c.Op = kmsg.IncrementalAlterConfigOpSet
	c.Value = kmsg.StringPtr(value)
	res.Configs = append(res.Configs, c)
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, r)
	if err != nil {
		return fmt.Errorf("setting %s of share group %s: %w", GroupAutoReset, group, err)
	}
	for _, rr := range resp.Resources {
		err := kerr.ErrorForCode(rr.ErrorCode)
		switch {
		case err == nil:
		case errors.Is(err, kerr.GroupAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed), errors.Is(err, kerr.TopicAuthorizationFailed):
			return fmt.Errorf("%w %s (%v): this needs the ALTER_CONFIGS operation on the group; the group's own %s applies",
				ErrNoPermission, group, err, GroupAutoReset)
		default:
			return fmt.Errorf("setting %s of share group %s: %w", GroupAutoReset, group, err)
		}
	}
	return nil
}

// HasStartOffsets reports whether the group has a start offset for any
// partition yet: once it has, share.auto.offset.reset no longer decides
// anything and KAFKA_START_OFFSET is not applied. A group that does not
// exist has none.
func HasStartOffsets(ctx context.Context, adm *kadm.Client, group string) (bool, error) {
	ds, err := adm.DescribeShareGroupOffsets(ctx, group)
	if err != nil {
		return false, fmt.Errorf("describing the start offsets of share group %s: %w", group, err)
	}
	d, ok := ds[group]
	if !ok {
		return false, nil
	}
	if d.Err != nil {
		if errors.Is(d.Err, kerr.GroupIDNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("describing the start offsets of share group %s: %w", group, d.Err)
	}
	found := false
	d.Offsets.Each(func(o kadm.ShareOffset) {
		if o.Err == nil && o.StartOffset >= 0 {
			found = true
		}
	})
	return found, nil
}

// ApplyStart sets share.auto.offset.reset from KAFKA_START_OFFSET when the
// group has no start offsets yet. applied says whether it was set; a refusal
// wraps ErrNoPermission (the caller warns and the group's own setting
// applies).
func ApplyStart(ctx context.Context, adm *kadm.Client, r kmsg.Requestor, group, start string, now time.Time) (applied bool, value string, err error) {
	value, err = AutoReset(start, now)
	if err != nil {
		return false, "", err
	}
	has, err := HasStartOffsets(ctx, adm, group)
	if err != nil || has {
		return false, value, err
	}
	if err := SetAutoReset(ctx, r, group, value); err != nil {
		return false, value, err
	}
	return true, value, nil
}
