package share

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name       string
		broker     map[string]string
		group      map[string]string
		deny       bool
		wantLimit  int32
		wantLock   time.Duration
		limitFrom  Source
		lockFrom   Source
		wantWarned bool
	}{
		{name: "kafka defaults through the broker", wantLimit: 5, wantLock: 30 * time.Second, limitFrom: FromBroker, lockFrom: FromBroker},
		{name: "broker defaults", broker: map[string]string{BrokerDeliveryLimit: "7", BrokerLockDuration: "45000"}, wantLimit: 7, wantLock: 45 * time.Second, limitFrom: FromBroker, lockFrom: FromBroker},
		{name: "group's own", group: map[string]string{GroupDeliveryLimit: "3", GroupLockDuration: "15000"}, wantLimit: 3, wantLock: 15 * time.Second, limitFrom: FromGroup, lockFrom: FromGroup},
		{name: "group limit, broker lock", group: map[string]string{GroupDeliveryLimit: "2"}, broker: map[string]string{BrokerLockDuration: "20000"}, wantLimit: 2, wantLock: 20 * time.Second, limitFrom: FromGroup, lockFrom: FromBroker},
		{name: "denied", broker: map[string]string{BrokerDeliveryLimit: "7"}, deny: true, wantLimit: 5, wantLock: 30 * time.Second, limitFrom: FromDefault, lockFrom: FromDefault, wantWarned: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.BrokerConfigs(tc.broker))
			if err != nil {
				t.Fatal(err)
			}
			defer kf.Close()
			if tc.deny {
				kf.ControlKey(kmsg.DescribeConfigs.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
					kf.KeepControl()
					req := kr.(*kmsg.DescribeConfigsRequest)
					resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
					for _, r := range req.Resources {
						rr := kmsg.NewDescribeConfigsResponseResource()
						rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
						rr.ErrorCode = kerr.GroupAuthorizationFailed.Code
						if r.ResourceType == kmsg.ConfigResourceTypeBroker {
							rr.ErrorCode = kerr.ClusterAuthorizationFailed.Code
						}
						resp.Resources = append(resp.Resources, rr)
					}
					return resp, nil, true
				})
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(kf.ListenAddrs()...))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx := context.Background()
			for k, v := range tc.group {
				req := kmsg.NewPtrIncrementalAlterConfigsRequest()
				res := kmsg.NewIncrementalAlterConfigsRequestResource()
				res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeGroupConfig, "g"
				c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
				c.Name, c.Value = k, kmsg.StringPtr(v)
				res.Configs = append(res.Configs, c)
				req.Resources = append(req.Resources, res)
				resp, err := req.RequestWith(ctx, cl)
				if err == nil {
					err = kerr.ErrorForCode(resp.Resources[0].ErrorCode)
				}
				if err != nil {
					t.Fatalf("setting %s: %v", k, err)
				}
			}
			s, err := Read(ctx, cl, "g")
			if err != nil {
				t.Fatal(err)
			}
			if s.DeliveryLimit != tc.wantLimit || s.LockDuration != tc.wantLock || s.LimitFrom != tc.limitFrom || s.LockFrom != tc.lockFrom {
				t.Errorf("got %d (%s), %s (%s); want %d (%s), %s (%s)", s.DeliveryLimit, s.LimitFrom, s.LockDuration, s.LockFrom, tc.wantLimit, tc.limitFrom, tc.wantLock, tc.lockFrom)
			}
			if warned := len(s.Warnings) > 0; warned != tc.wantWarned {
				t.Errorf("got warnings %q, want some: %v", s.Warnings, tc.wantWarned)
			}
			if tc.wantWarned && !strings.Contains(s.Warnings[0], "DESCRIBE_CONFIGS") {
				t.Errorf("got warning %q, want it to name DESCRIBE_CONFIGS", s.Warnings[0])
			}
		})
	}
}

func TestAutoReset(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ start, want string }{
		{"", "earliest"},
		{"earliest", "earliest"},
		{"latest", "latest"},
		{"2026-12-07T10:29:59.5Z", "by_duration:PT1H30M1S"},
		{"2026-12-07T11:59:00Z", "by_duration:PT1M0S"},
		{"2026-12-08T00:00:00Z", "latest"},
	} {
		t.Run(tc.start, func(t *testing.T) {
			got, err := AutoReset(tc.start, now)
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := AutoReset("beginning", now); err == nil {
		t.Fatal("got no error for an unknown start offset")
	}
}

func TestSetAutoResetDenied(t *testing.T) {
	kf, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	kf.ControlKey(kmsg.IncrementalAlterConfigs.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		req := kr.(*kmsg.IncrementalAlterConfigsRequest)
		resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = req.Resources[0].ResourceType, req.Resources[0].ResourceName
		rr.ErrorCode = kerr.GroupAuthorizationFailed.Code
		resp.Resources = append(resp.Resources, rr)
		return resp, nil, true
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(kf.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	err = SetAutoReset(context.Background(), cl, "g", "earliest")
	if !errors.Is(err, ErrNoPermission) || !strings.Contains(err.Error(), "ALTER_CONFIGS") {
		t.Fatalf("got %v, want ErrNoPermission naming ALTER_CONFIGS", err)
	}
}

// TestApplyStart: KAFKA_START_OFFSET becomes the group's
// share.auto.offset.reset while the group has no start offsets, and is left
// alone once it has.
func TestApplyStart(t *testing.T) {
	kf := startShareCluster(t, 5, 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(kf.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	applied, v, err := ApplyStart(ctx, adm, cl, "fresh", "latest", time.Now())
	if err != nil || !applied || v != "latest" {
		t.Fatalf("fresh group: got %v %q %v, want applied latest", applied, v, err)
	}
	// spikeGroup gets start offsets once a member consumed from it.
	a := member(t, kf)
	for _, r := range pollN(t, a, 2, 10*time.Second) {
		r.Ack(kgo.AckAccept)
	}
	if err := a.FlushAcks(ctx); err != nil {
		t.Fatal(err)
	}
	waitStartOffset(t, kf, 2)
	applied, _, err = ApplyStart(ctx, adm, cl, spikeGroup, "latest", time.Now())
	if err != nil || applied {
		t.Fatalf("group with start offsets: got applied %v, %v; want left alone", applied, err)
	}
}
