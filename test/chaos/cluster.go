package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The faults of a three-broker cluster (-nodes 3), those MSK maintenance and
// failures cause, one after another while records flow, with a quiet gap
// before each:
//
//  1. SIGKILL of the broker leading the most source partitions, down for a
//     while, then restarted on its log dir;
//  2. the same for the broker leading the most dead-letter partitions,
//     while the always-failing records keep dead-letter writes going;
//  3. a rolling restart: each broker in turn stopped (SIGTERM, controlled
//     shutdown) and started, the next one only once no partition is
//     under-replicated, as MSK patches a cluster;
//  4. SIGSTOP of the broker leading the most source partitions (a hung or
//     partitioned broker: connections stay open, nothing answers) for
//     longer than the service's session timeout, then SIGCONT.
//
// Each fault's window runs from its start until no partition is
// under-replicated again; the report gives, per partition, the longest
// time between two successful deliveries that overlaps the window.

// sessionTimeout is the service's KAFKA_SESSION_TIMEOUT (harness.start).
const sessionTimeout = 6 * time.Second

// faultWindow is one fault as it happened.
type faultWindow struct {
	name   string
	broker int32
	note   string
	start  time.Time
	back   time.Time // the broker restarted or resumed
	synced time.Time // no partition under-replicated any more
}

// faultReport is a fault and the partitions' longest stalls during it.
type faultReport struct {
	Fault  string  `json:"fault"`
	Broker int32   `json:"broker"`
	Note   string  `json:"note,omitempty"`
	AtS    float64 `json:"at_s"`
	// DownS is from the fault's start until the broker was back (restarted
	// and caught up, or resumed); SyncedS until no partition was
	// under-replicated.
	DownS   float64 `json:"down_s"`
	SyncedS float64 `json:"until_fully_replicated_s"`
	// MaxStallS is, per partition, the longest time between two of its
	// successful deliveries overlapping [start, synced]; Open lists the
	// partitions with no delivery after the fault's start at all.
	MaxStallS map[int32]float64 `json:"max_stall_s"`
	WorstS    float64           `json:"worst_stall_s"`
	Open      []int32           `json:"no_delivery_after_start,omitempty"`
	// Duplicates are the successful deliveries of records delivered
	// before, from the fault's start until the next fault's.
	Duplicates int `json:"duplicates"`
}

// countBetween counts the times in [from, to).
func countBetween(ts []time.Time, from, to time.Time) int {
	n := 0
	for _, t := range ts {
		if !t.Before(from) && t.Before(to) {
			n++
		}
	}
	return n
}

func secs(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }

// report measures the stalls of the window from the partitions' successful
// deliveries (ok, in time order); end is when the run stopped looking.
func (w faultWindow) report(runStart time.Time, ok map[int32][]time.Time, end time.Time) faultReport {
	r := faultReport{Fault: w.name, Broker: w.broker, Note: w.note, AtS: secs(w.start.Sub(runStart)),
		DownS: secs(w.back.Sub(w.start)), SyncedS: secs(w.synced.Sub(w.start)), MaxStallS: map[int32]float64{}}
	for p, ts := range ok {
		var worst time.Duration
		after := false
		for i, t := range ts {
			if !t.After(w.start) {
				continue
			}
			after = true
			if i > 0 && ts[i-1].Before(w.synced) {
				worst = max(worst, t.Sub(ts[i-1]))
			}
		}
		if !after && len(ts) > 0 {
			r.Open = append(r.Open, p)
			worst = end.Sub(ts[len(ts)-1])
		}
		r.MaxStallS[p] = secs(worst)
		r.WorstS = max(r.WorstS, secs(worst))
	}
	slices.Sort(r.Open)
	return r
}

// stallTable renders the reports as the Markdown table of
// docs/RELIABILITY.md.
func stallTable(faults []faultReport, parts int) string {
	var b strings.Builder
	b.WriteString("| fault | broker | at | broker back after | fully replicated after |")
	for p := range parts {
		fmt.Fprintf(&b, " p%d |", p)
	}
	b.WriteString(" longest | duplicates |\n| --- | --: | --: | --: | --: |")
	for range parts + 2 {
		b.WriteString(" --: |")
	}
	b.WriteString("\n")
	for _, f := range faults {
		fmt.Fprintf(&b, "| %s | %d | +%.0fs | %.1fs | %.1fs |", f.Fault, f.Broker, f.AtS, f.DownS, f.SyncedS)
		for p := range parts {
			fmt.Fprintf(&b, " %.1f |", f.MaxStallS[int32(p)])
		}
		fmt.Fprintf(&b, " **%.1fs** | %d |\n", f.WorstS, f.Duplicates)
	}
	return b.String()
}

// clusterFaults runs the faults of a three-broker cluster and returns their
// windows.
func (h *harness) clusterFaults(ctx context.Context, adm *kadm.Client, a *instance) ([]faultWindow, error) {
	rng := h.rng
	gap := func() {
		time.Sleep(5*time.Second + time.Duration(rng.Int64N(int64(5*time.Second))))
	}
	var windows []faultWindow
	if err := waitInSync(ctx, adm, 2*time.Minute); err != nil {
		return nil, err
	}
	time.Sleep(10 * time.Second) // the group joined and records flow
	if err := h.alive(a); err != nil {
		return nil, err
	}

	// 1 and 2: SIGKILL of a leader, restart after 5 to 15 seconds.
	for _, target := range []struct{ name, topic string }{
		{"SIGKILL of the leader of the most partitions", h.topic},
		{"SIGKILL of the dead-letter topic's leader", h.dlq},
	} {
		gap()
		leader, note, err := h.busiestLeader(ctx, adm, target.topic)
		if err != nil {
			return nil, err
		}
		w := faultWindow{name: target.name, broker: leader, note: note, start: time.Now()}
		h.event("%s: broker %d (%s)", target.name, leader, note)
		if err := nodeCmd("kill", leader); err != nil {
			return nil, err
		}
		time.Sleep(5*time.Second + time.Duration(rng.Int64N(int64(10*time.Second))))
		h.event("restarting broker %d", leader)
		if err := nodeCmd("start", leader); err != nil {
			return nil, err
		}
		w.back = time.Now()
		h.event("broker %d back after %.1fs", leader, secs(w.back.Sub(w.start)))
		if err := waitInSync(ctx, adm, 3*time.Minute); err != nil {
			return nil, err
		}
		w.synced = time.Now()
		h.event("no partition under-replicated, %.1fs after the kill", secs(w.synced.Sub(w.start)))
		windows = append(windows, w)
		if err := h.alive(a); err != nil {
			return nil, err
		}
	}

	// 3: a rolling restart, in an order of the seed's choosing.
	gap()
	order := []int32{1, 2, 3}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	h.event("rolling restart: brokers %v", order)
	for i, n := range order {
		_, note, err := h.busiestLeader(ctx, adm, h.topic)
		if err != nil {
			return nil, err
		}
		if led, err := leaderCount(ctx, adm, h.topic, n); err == nil {
			note = fmt.Sprintf("led %d of the source partitions; %s", led, note)
		}
		w := faultWindow{name: fmt.Sprintf("rolling restart, %d of 3: stop and start", i+1), broker: n, note: note, start: time.Now()}
		if err := nodeCmd("stop", n); err != nil {
			return nil, err
		}
		h.event("broker %d stopped (controlled shutdown) in %.1fs", n, secs(time.Since(w.start)))
		if err := nodeCmd("start", n); err != nil {
			return nil, err
		}
		w.back = time.Now()
		if err := waitInSync(ctx, adm, 3*time.Minute); err != nil {
			return nil, err
		}
		w.synced = time.Now()
		h.event("broker %d back after %.1fs; no partition under-replicated after %.1fs", n, secs(w.back.Sub(w.start)), secs(w.synced.Sub(w.start)))
		windows = append(windows, w)
		if err := h.alive(a); err != nil {
			return nil, err
		}
	}

	// 4: a hung broker, for longer than the session timeout (and than
	// the controller's broker.session.timeout.ms, 9s, after which it
	// fences the broker and moves its leaderships).
	gap()
	leader, note, err := h.busiestLeader(ctx, adm, h.topic)
	if err != nil {
		return nil, err
	}
	pause := 2*sessionTimeout + time.Duration(rng.Int64N(int64(2*sessionTimeout)))
	w := faultWindow{name: fmt.Sprintf("SIGSTOP for %.0fs (session timeout %s)", pause.Seconds(), sessionTimeout), broker: leader, note: note, start: time.Now()}
	h.event("SIGSTOP broker %d for %s (%s)", leader, pause.Round(100*time.Millisecond), note)
	if err := nodeCmd("pause", leader); err != nil {
		return nil, err
	}
	time.Sleep(pause)
	if err := nodeCmd("resume", leader); err != nil {
		return nil, err
	}
	w.back = time.Now()
	h.event("SIGCONT broker %d", leader)
	if err := waitInSync(ctx, adm, 3*time.Minute); err != nil {
		return nil, err
	}
	w.synced = time.Now()
	h.event("no partition under-replicated, %.1fs after the SIGSTOP", secs(w.synced.Sub(w.start)))
	windows = append(windows, w)
	return windows, h.alive(a)
}

// nodeCmd runs scripts/kafka/node.sh cmd n (on the cluster of KAFKA_RUN).
func nodeCmd(cmd string, n int32) error {
	c := exec.Command(filepath.Join(*scripts, "node.sh"), cmd, fmt.Sprint(n))
	c.Env = os.Environ()
	out, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("node.sh %s %d: %v\n%s", cmd, n, err, out)
	}
	return nil
}

// leaders returns the leader of each partition of topic.
func leaders(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int32, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, err
	}
	t, ok := td[topic]
	if !ok || t.Err != nil {
		return nil, fmt.Errorf("metadata of %s: %v", topic, t.Err)
	}
	out := map[int32]int32{}
	for p, pd := range t.Partitions {
		out[p] = pd.Leader
	}
	return out, nil
}

func leaderCount(ctx context.Context, adm *kadm.Client, topic string, broker int32) (int, error) {
	ls, err := leaders(ctx, adm, topic)
	n := 0
	for _, l := range ls {
		if l == broker {
			n++
		}
	}
	return n, err
}

// busiestLeader returns the broker leading the most partitions of topic
// (the lowest id on a tie), and a note of what it leads and whether it is
// the group's coordinator.
func (h *harness) busiestLeader(ctx context.Context, adm *kadm.Client, topic string) (int32, string, error) {
	ls, err := leaders(ctx, adm, topic)
	if err != nil {
		return 0, "", err
	}
	count := map[int32]int{}
	for _, l := range ls {
		count[l]++
	}
	best := int32(-1)
	for b, n := range count {
		if b >= 0 && (best < 0 || n > count[best] || n == count[best] && b < best) {
			best = b
		}
	}
	if best < 0 {
		return 0, "", errors.New("no partition of " + topic + " has a leader")
	}
	note := fmt.Sprintf("led %d of %d partitions of %s", count[best], len(ls), topic)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if co := adm.FindGroupCoordinators(cctx, h.group); len(co) > 0 {
		for _, c := range co {
			if c.Err == nil && c.NodeID == best {
				note += "; the group's coordinator"
			}
		}
	}
	return best, note, nil
}

// waitInSync waits until no partition of any topic (internal ones too) is
// under-replicated: every replica in the ISR and a leader elected.
func waitInSync(ctx context.Context, adm *kadm.Client, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := "no metadata yet"
	for {
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		td, err := adm.ListTopicsWithInternal(mctx)
		cancel()
		if err == nil {
			urp := 0
			var some []string
			td.EachPartition(func(pd kadm.PartitionDetail) {
				if pd.Leader < 0 || len(pd.ISR) < len(pd.Replicas) {
					urp++
					if len(some) < 3 {
						some = append(some, fmt.Sprintf("%s/%d isr %v of %v", pd.Topic, pd.Partition, pd.ISR, pd.Replicas))
					}
				}
			})
			if urp == 0 {
				return nil
			}
			last = fmt.Sprintf("%d under-replicated (%s)", urp, strings.Join(some, ", "))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("partitions still under-replicated after %s: %s", timeout, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitTopics waits until every broker reports each topic with a leader for
// every partition, asking each broker for its own metadata.
func waitTopics(ctx context.Context, seeds []string, timeout time.Duration, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(timeout)
	last := "no answer yet"
	for {
		if last = topicsMissing(ctx, cl, topics); last == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topics %v not known to every broker within %s: %s", topics, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// topicsMissing says which broker does not know which topic yet, or "".
func topicsMissing(ctx context.Context, cl *kgo.Client, topics []string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	bm, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return err.Error()
	}
	for _, b := range bm.Brokers {
		req := kmsg.NewPtrMetadataRequest()
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
		kresp, err := cl.Broker(int(b.NodeID)).Request(ctx, req)
		if err != nil {
			return fmt.Sprintf("broker %d: %v", b.NodeID, err)
		}
		resp := kresp.(*kmsg.MetadataResponse)
		for _, t := range resp.Topics {
			if err := kerr.ErrorForCode(t.ErrorCode); err != nil || len(t.Partitions) == 0 {
				name := ""
				if t.Topic != nil {
					name = *t.Topic
				}
				return fmt.Sprintf("broker %d: topic %s: %v", b.NodeID, name, err)
			}
			for _, p := range t.Partitions {
				if p.Leader < 0 {
					return fmt.Sprintf("broker %d: partition %d without a leader", b.NodeID, p.Partition)
				}
			}
		}
	}
	return ""
}

// alive fails when the service instance has exited on its own.
func (h *harness) alive(in *instance) error {
	select {
	case <-in.exited:
		return fmt.Errorf("%s exited on its own during the run (see %s)", in.name, filepath.Join(h.logDir, in.name+".log"))
	default:
		return nil
	}
}
