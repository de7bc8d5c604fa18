package preflight

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/msk-consumer/msk-consumer/config"
)

// needShare skips the test on a real broker that does not serve share
// groups (ShareGroupHeartbeat: Kafka 4.2+ with share.version=1), such as
// make test-kafka's 3.9.2, except in a share tier (KAFKA_TEST_SHARE=1,
// make test-kafka-share), which fails there instead.
func needShare(t *testing.T, adm *kadm.Client) {
	t.Helper()
	vs, err := adm.ApiVersions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ok := true
	vs.Each(func(v kadm.BrokerApiVersions) {
		if _, has := v.KeyMaxVersion(int16(kmsg.ShareGroupHeartbeat)); !has {
			ok = false
		}
	})
	switch {
	case ok:
	case os.Getenv("KAFKA_TEST_SHARE") == "1":
		t.Fatal("KAFKA_TEST_SHARE=1, but the broker does not serve share groups (ShareGroupHeartbeat: Kafka 4.2+ with share.version=1)")
	default:
		t.Skip("the broker does not serve share groups (ShareGroupHeartbeat: Kafka 4.2+ with share.version=1)")
	}
}

// TestCheckShareGroup: with KAFKA_GROUP_TYPE=share, check reports that the
// brokers serve share groups with lock renewals, that the share group can
// be described, and the group's delivery limit and lock duration.
func TestCheckShareGroup(t *testing.T) {
	e := setup(t, nil)
	if e.kf == nil {
		needShare(t, e.adm)
	}
	e.cfg.Kafka.GroupType = config.GroupTypeShare
	rs := e.check(t)
	if !Passed(rs) {
		t.Fatalf("got failures, want every check passed:\n%s", output(rs))
	}
	out := output(rs)
	for _, want := range []string{
		"✓ share groups: served by ", "with lock renewals",
		"✓ share group " + e.cfg.Kafka.GroupID + ": can be described",
		// The brokers' defaults: Kafka's own unless scripts/kafka set others.
		"✓ share group " + e.cfg.Kafka.GroupID + " configuration: share.delivery.count.limit 5 (broker), share.record.lock.duration.ms 30000 (broker)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("got\n%s\nwant a line with %q", out, want)
		}
	}
	if strings.Contains(out, "✓ group ") {
		t.Errorf("got the consumer group's check for a share group:\n%s", out)
	}
}

// TestCheckShareUnsupported: brokers without ShareAcknowledge v2 (before
// Kafka 4.2) fail the check, naming what is missing and what is needed.
func TestCheckShareUnsupported(t *testing.T) {
	e := setup(t, nil)
	if e.kf == nil {
		t.Skip("needs kfake to cap the API versions")
	}
	e.cfg.Kafka.GroupType = config.GroupTypeShare
	v := kversion.Stable()
	v.SetMaxKeyVersion(kmsg.ShareAcknowledge.Int16(), 1)
	e.kf.ControlKey(kmsg.ApiVersions.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		e.kf.KeepControl()
		req := kr.(*kmsg.ApiVersionsRequest)
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		resp.Version = req.Version
		v.EachMaxKeyVersion(func(k, max int16) {
			ak := kmsg.NewApiVersionsResponseApiKey()
			ak.ApiKey, ak.MaxVersion = k, max
			if k == kmsg.ShareGroupHeartbeat.Int16() || k == kmsg.ShareFetch.Int16() || k == kmsg.ShareAcknowledge.Int16() {
				ak.MinVersion = 1
			}
			resp.ApiKeys = append(resp.ApiKeys, ak)
		})
		return resp, nil, true
	})
	rs := e.check(t)
	r := line(t, rs, "share groups")
	if r.Status != Fail || !strings.Contains(r.Detail, "ShareAcknowledge up to v1") || !strings.Contains(r.Fix, "Kafka 4.2+") {
		t.Fatalf("got %s, want a failure naming ShareAcknowledge v1 and Kafka 4.2+", r)
	}
	if s := line(t, rs, "share group "+e.cfg.Kafka.GroupID); s.Status != Skip {
		t.Errorf("got %s, want the group's check skipped", s)
	}
}
