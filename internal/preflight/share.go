package preflight

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/kafkaclient"
	"github.com/msk-consumer/msk-consumer/internal/share"
)

// The checks of a share group (KAFKA_GROUP_TYPE=share), in place of the
// consumer group's: the brokers serve share groups, with lock renewals
// (RENEW, KIP-1222: Apache Kafka 4.2+, ShareAcknowledge v2), the group can
// be described, and its delivery limit and lock duration can be read.

const shareFix = "share groups need Apache Kafka 4.2+ (on MSK: Standard brokers on 4.2+; self-managed 4.1 and earlier: not supported)"

func shareChecks(cfg config.Config) []string {
	g := cfg.Kafka.GroupID
	return []string{"share groups", "share group " + g, "share group " + g + " configuration"}
}

func checkShare(ctx context.Context, cfg config.Config, cl *kgo.Client, adm *kadm.Client, d Deps) []Result {
	rs := []Result{checkShareSupport(ctx, adm, d)}
	if rs[0].Status == Fail {
		for _, name := range shareChecks(cfg)[1:] {
			rs = append(rs, Result{Check: name, Status: Skip, Detail: "not checked: the brokers do not serve share groups"})
		}
		return rs
	}
	rs = append(rs, checkShareGroup(ctx, cfg, adm, d))
	sctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	name := shareChecks(cfg)[2]
	s, err := share.Read(sctx, cl, cfg.Kafka.GroupID)
	if err != nil {
		return append(rs, Result{Check: name, Status: Fail, Detail: "not read within " + d.Timeout.String()})
	}
	detail := fmt.Sprintf("share.delivery.count.limit %d (%s), share.record.lock.duration.ms %d (%s)",
		s.DeliveryLimit, s.LimitFrom, s.LockDuration.Milliseconds(), s.LockFrom)
	if len(s.Warnings) > 0 {
		return append(rs, Result{Check: name, Status: Warn, Detail: detail + "; " + strings.Join(s.Warnings, "; "),
			Fix: "the service uses these values; allow DESCRIBE_CONFIGS on the group to read its own"})
	}
	return append(rs, Result{Check: name, Status: Pass, Detail: detail})
}

// checkShareSupport reads every broker's API versions: each must serve
// ShareGroupHeartbeat, ShareFetch and ShareAcknowledge, the last at v2 or
// later (RENEW).
func checkShareSupport(ctx context.Context, adm *kadm.Client, d Deps) Result {
	const name = "share groups"
	vctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	vs, err := adm.ApiVersions(vctx)
	if err != nil {
		return Result{Check: name, Status: Fail, Detail: "reading the brokers' API versions: " + err.Error()}
	}
	var missing []string
	n := 0
	for _, v := range vs.Sorted() {
		if v.Err != nil {
			return Result{Check: name, Status: Fail, Detail: fmt.Sprintf("broker %d: reading its API versions: %v", v.NodeID, v.Err)}
		}
		n++
		for _, k := range []kmsg.Key{kmsg.ShareGroupHeartbeat, kmsg.ShareFetch, kmsg.ShareAcknowledge} {
			if _, ok := v.KeyMaxVersion(k.Int16()); !ok {
				missing = append(missing, fmt.Sprintf("broker %d does not serve %s", v.NodeID, k.Name()))
			}
		}
		if max, ok := v.KeyMaxVersion(kmsg.ShareAcknowledge.Int16()); ok && max < 2 {
			missing = append(missing, fmt.Sprintf("broker %d serves ShareAcknowledge up to v%d, lock renewals (RENEW) need v2", v.NodeID, max))
		}
	}
	if len(missing) > 0 {
		return Result{Check: name, Status: Fail, Detail: strings.Join(missing, "; "), Fix: shareFix}
	}
	return Result{Check: name, Status: Pass, Detail: fmt.Sprintf("served by %s, with lock renewals", count(n, "broker"))}
}

func checkShareGroup(ctx context.Context, cfg config.Config, adm *kadm.Client, d Deps) Result {
	name := shareChecks(cfg)[1]
	gctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	gs, err := adm.DescribeShareGroups(gctx, cfg.Kafka.GroupID)
	if err == nil {
		err = gs[cfg.Kafka.GroupID].Err
	}
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		return Result{Check: name, Status: Pass, Detail: "can be described; it does not exist yet (the first member creates it)"}
	case errors.Is(err, kerr.InconsistentGroupProtocol):
		return Result{Check: name, Status: Fail, Detail: err.Error(), Fix: "the group id is taken by a consumer group: use another KAFKA_GROUP_ID for the share group"}
	case err != nil:
		fix := kafkaclient.Hint(err)
		if errors.Is(err, kerr.GroupAuthorizationFailed) {
			fix = "allow kafka-cluster:DescribeGroup and AlterGroup on the group (MSK IAM, deploy/iam) or Describe and Read (Kafka ACLs)"
		}
		return Result{Check: name, Status: Fail, Detail: err.Error(), Fix: fix}
	}
	g := gs[cfg.Kafka.GroupID]
	if g.GroupState == "" || g.GroupState == "Dead" {
		return Result{Check: name, Status: Pass, Detail: "can be described; it does not exist yet (the first member creates it)"}
	}
	return Result{Check: name, Status: Pass, Detail: fmt.Sprintf("can be described; state %s, %s", g.GroupState, count(len(g.Members), "member"))}
}
