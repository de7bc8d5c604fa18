package ops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/msk-consumer/msk-consumer/internal/dlq"
)

var (
	kinds = []dlq.Kind{dlq.KindDecode, dlq.KindHandler, dlq.KindValidation, dlq.KindExpired}
	t0    = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
)

// entry is one dead-letter record of a test's DLQ.
type entry struct {
	id       int
	kind     dlq.Kind
	group    string
	failedAt time.Time
	dlqPart  int32
	origPart int32
}

// seedDLQ writes n dead-letter records of source to dlqTopic, built by
// dlq.Build as the service builds them: kinds in turn, every third record
// of otherGroup, failed an hour apart from t0, alternating between the
// DLQ's two partitions and coming from the source's three partitions.
func seedDLQ(t *testing.T, c *cluster, source, dlqTopic, group, otherGroup string, n int) []entry {
	t.Helper()
	var es []entry
	var rs []*kgo.Record
	for i := range n {
		e := entry{id: i, kind: kinds[i%len(kinds)], group: group, failedAt: t0.Add(time.Duration(i) * time.Hour),
			dlqPart: int32(i % 2), origPart: int32(i % 3)}
		if i%3 == 2 {
			e.group = otherGroup
		}
		es = append(es, e)
		src := &kgo.Record{Topic: source, Partition: e.origPart, Offset: int64(100 + i),
			Timestamp: t0.Add(-time.Minute), Key: []byte("k-" + strconv.Itoa(i)), Value: []byte("v-" + strconv.Itoa(i)),
			Headers: []kgo.RecordHeader{{Key: "trace-id", Value: []byte("t-" + strconv.Itoa(i))}, {Key: "bin", Value: []byte{0, 0xff, byte(i)}}}}
		r := dlq.Build(dlqTopic, e.group, dlq.Failure{Record: src, Kind: e.kind, Err: errors.New("boom " + strconv.Itoa(i)), Attempts: 3}, e.failedAt)
		r.Partition = e.dlqPart
		rs = append(rs, r)
	}
	c.produce(t, rs...)
	return es
}

// redriven is what a record redriven to topic must be, as a string to
// compare: topic, partition (-1: not checked), key, value, headers.
func redriven(e entry, topic string, partition int32, count int) string {
	return fmt.Sprintf("%s/%d k-%d=v-%d [trace-id=t-%d bin=%x %s=%d]", topic, partition, e.id, e.id, e.id,
		[]byte{0, 0xff, byte(e.id)}, HeaderRedriveCount, count)
}

func got(rs []*kgo.Record, checkPartition bool) []string {
	var out []string
	for _, r := range rs {
		p := int32(-1)
		if checkPartition {
			p = r.Partition
		}
		var hs []string
		for _, h := range r.Headers {
			v := string(h.Value)
			if h.Key == "bin" {
				v = fmt.Sprintf("%x", h.Value)
			}
			hs = append(hs, h.Key+"="+v)
		}
		out = append(out, fmt.Sprintf("%s/%d %s=%s [%s]", r.Topic, p, r.Key, r.Value, strings.Join(hs, " ")))
	}
	slices.Sort(out)
	return out
}

func TestRedriveFilters(t *testing.T) {
	c := startCluster(t)
	for _, tc := range []struct {
		name  string
		o     Redrive
		to    bool // --to a topic of its own
		match func(e entry, group string) bool
	}{
		{name: "the group's records", match: func(e entry, g string) bool { return e.group == g }},
		{name: "kind decode", o: Redrive{Kinds: []string{"decode"}},
			match: func(e entry, g string) bool { return e.group == g && e.kind == dlq.KindDecode }},
		{name: "kinds handler and expired", o: Redrive{Kinds: []string{"handler", "expired"}},
			match: func(e entry, g string) bool {
				return e.group == g && (e.kind == dlq.KindHandler || e.kind == dlq.KindExpired)
			}},
		{name: "every group", o: Redrive{Group: AnyGroup}, match: func(entry, string) bool { return true }},
		{name: "another group", o: Redrive{Group: "other"}, match: func(e entry, _ string) bool { return e.group == "other" }},
		{name: "since", o: Redrive{Since: t0.Add(6 * time.Hour)},
			match: func(e entry, g string) bool { return e.group == g && e.id >= 6 }},
		{name: "until", o: Redrive{Until: t0.Add(3 * time.Hour)},
			match: func(e entry, g string) bool { return e.group == g && e.id <= 3 }},
		{name: "since and until", o: Redrive{Since: t0.Add(3 * time.Hour), Until: t0.Add(9*time.Hour + 30*time.Minute)},
			match: func(e entry, g string) bool { return e.group == g && e.id >= 3 && e.id <= 9 }},
		{name: "partition 1", o: Redrive{Partitions: []int32{1}},
			match: func(e entry, g string) bool { return e.group == g && e.dlqPart == 1 }},
		{name: "to another topic", o: Redrive{}, to: true, match: func(e entry, g string) bool { return e.group == g }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.sub(t)
			source := c.topic(t, "-src", 3, nil)
			dlqTopic := c.topic(t, "-dlq", 2, nil)
			group := c.group(t, "-g")
			es := seedDLQ(t, c, source, dlqTopic, group, "other", 14)
			o := tc.o
			o.From, o.MaxRedrives, o.ProgressGroup, o.Batch = dlqTopic, DefaultMaxRedrives, c.group(t, "-g.redrive"), 4
			if o.Group == "" {
				o.Group = group
			}
			dest := source
			if tc.to {
				dest = c.topic(t, "-to", 1, nil)
				o.To = dest
			}
			var report bytes.Buffer
			sum, err := o.Run(context.Background(), RedriveDeps{Opts: c.opts(), Report: &report})
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, e := range es {
				if tc.match(e, group) {
					p := e.origPart
					if tc.to {
						p = -1
					}
					want = append(want, redriven(e, dest, p, 1))
				}
			}
			slices.Sort(want)
			if g := got(c.readAll(t, dest), !tc.to); !slices.Equal(g, want) {
				t.Errorf("got records\n%s\nwant\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
			}
			if sum.Sent != int64(len(want)) || sum.LoopGuarded != 0 || sum.Invalid != 0 {
				t.Errorf("got summary %s, want %d sent and nothing skipped", sum, len(want))
			}
			if wantRead := int64(len(es)); len(o.Partitions) == 0 && sum.Read != wantRead {
				t.Errorf("got %d read, want %d", sum.Read, wantRead)
			}
			if sum.Sent+sum.NotMatching != sum.Read {
				t.Errorf("got summary %s: sent and not matching do not add up to read", sum)
			}
			if report.Len() != 0 {
				t.Errorf("got report %q, want none", report.String())
			}
		})
	}
}

// TestRedriveSkips checks the loop guard and the records that cannot be
// redriven: each is skipped, counted and reported, and the others sent.
func TestRedriveSkips(t *testing.T) {
	c := startCluster(t)
	source := c.topic(t, "-src", 1, nil)
	dlqTopic := c.topic(t, "-dlq", 1, nil)
	group := c.group(t, "-g")
	build := func(i int, extra ...kgo.RecordHeader) *kgo.Record {
		src := &kgo.Record{Topic: source, Offset: int64(i), Key: []byte("k-" + strconv.Itoa(i)), Value: []byte("v"),
			Headers: extra}
		return dlq.Build(dlqTopic, group, dlq.Failure{Record: src, Kind: dlq.KindHandler, Err: errors.New("500")}, t0)
	}
	noTopic := build(4)
	noTopic.Headers = slices.DeleteFunc(noTopic.Headers, func(h kgo.RecordHeader) bool { return h.Key == dlq.HeaderTopic })
	omitted := build(3)
	omitted.Value = nil
	omitted.Headers = append(omitted.Headers, kgo.RecordHeader{Key: dlq.HeaderValueOmitted, Value: []byte("2000000")})
	noHeaders := build(5)
	noHeaders.Headers = append(noHeaders.Headers, kgo.RecordHeader{Key: dlq.HeaderHeadersOmitted, Value: []byte("2")})
	c.produce(t,
		build(0, kgo.RecordHeader{Key: HeaderRedriveCount, Value: []byte("3")}), // at the guard
		build(1, kgo.RecordHeader{Key: HeaderRedriveCount, Value: []byte("2")}), // one more allowed
		build(2), // never redriven
		omitted,
		noTopic,
		noHeaders,
	)
	var report bytes.Buffer
	o := Redrive{From: dlqTopic, Group: group, MaxRedrives: 3, ProgressGroup: c.group(t, "-g.redrive")}
	sum, err := o.Run(context.Background(), RedriveDeps{Opts: c.opts(), Report: &report})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 2 || sum.LoopGuarded != 1 || sum.Invalid != 3 || sum.Read != 6 {
		t.Errorf("got %s, want 2 sent, 1 skipped by the loop guard, 3 not redrivable, of 6", sum)
	}
	var counts []string
	for _, r := range c.readAll(t, source) {
		n, _ := header(r, HeaderRedriveCount)
		counts = append(counts, string(r.Key)+":"+n)
	}
	slices.Sort(counts)
	if want := []string{"k-1:3", "k-2:1"}; !slices.Equal(counts, want) {
		t.Errorf("got %v, want %v", counts, want)
	}
	for _, want := range []string{
		"@0: already redriven 3 times (--max-redrives 3)",
		"@3: its value (2000000 bytes) was left out",
		"@4: no dlq.original.topic header",
		"@5: its headers (2) were left out",
	} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("got report\n%s\nwant a line with %q", report.String(), want)
		}
	}
}

// TestRedriveLoop runs a record through the loop: redriven, dead-lettered
// again by the service (dlq.Build keeps dlq.redrive.count), redriven, until
// the guard stops it.
func TestRedriveLoop(t *testing.T) {
	c := startCluster(t)
	source := c.topic(t, "-src", 1, nil)
	dlqTopic := c.topic(t, "-dlq", 1, nil)
	group := c.group(t, "-g")
	progress := c.group(t, "-g.redrive")
	c.produce(t, dlq.Build(dlqTopic, group, dlq.Failure{Record: &kgo.Record{Topic: source, Key: []byte("k"), Value: []byte("v")}, Kind: dlq.KindHandler}, t0))
	o := Redrive{From: dlqTopic, Group: group, MaxRedrives: 2, ProgressGroup: progress}
	for round := 1; round <= 3; round++ {
		sum, err := o.Run(context.Background(), RedriveDeps{Opts: c.opts()})
		if err != nil {
			t.Fatal(err)
		}
		if round == 3 {
			if sum.LoopGuarded != 1 || sum.Sent != 0 {
				t.Fatalf("round 3: got %s, want the record stopped by the loop guard", sum)
			}
			return
		}
		if sum.Sent != 1 {
			t.Fatalf("round %d: got %s, want 1 sent", round, sum)
		}
		rs := c.readAll(t, source)
		last := rs[len(rs)-1]
		if n, _ := header(last, HeaderRedriveCount); n != strconv.Itoa(round) {
			t.Fatalf("round %d: got %s=%s, want %d", round, HeaderRedriveCount, n, round)
		}
		// The service fails it again.
		c.produce(t, dlq.Build(dlqTopic, group, dlq.Failure{Record: last, Kind: dlq.KindHandler}, t0))
	}
}

// TestRedriveResume interrupts a redrive after its first round and runs it
// again: every record is sent exactly once.
func TestRedriveResume(t *testing.T) {
	c := startCluster(t)
	source := c.topic(t, "-src", 3, nil)
	dlqTopic := c.topic(t, "-dlq", 2, nil)
	group := c.group(t, "-g")
	es := seedDLQ(t, c, source, dlqTopic, group, group, 40)
	o := Redrive{From: dlqTopic, Group: group, MaxRedrives: 3, ProgressGroup: c.group(t, "-g.redrive"), Batch: 7}
	ctx, cancel := context.WithCancel(context.Background())
	sum1, err := o.Run(ctx, RedriveDeps{Opts: c.opts(), Progress: func(done, total int64) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want the interrupted redrive to return context.Canceled", err)
	}
	if sum1.Sent == 0 || sum1.Sent > 7 {
		t.Fatalf("got %s, want one round of at most 7 sent before the interruption", sum1)
	}
	sum2, err := o.Run(context.Background(), RedriveDeps{Opts: c.opts()})
	if err != nil {
		t.Fatal(err)
	}
	if sum1.Sent+sum2.Sent != int64(len(es)) {
		t.Errorf("got %d + %d sent, want %d in all", sum1.Sent, sum2.Sent, len(es))
	}
	assertEachOnce(t, c.readAll(t, source), es, 0)
}

// TestRedriveResumeAfterFailedCommit fails the commit of the first round
// (after its records were acknowledged): the resumed redrive sends that
// round again, and nothing else twice.
func TestRedriveResumeAfterFailedCommit(t *testing.T) {
	c := startCluster(t)
	if c.kf == nil {
		t.Skip("needs kfake's faults")
	}
	source := c.topic(t, "-src", 3, nil)
	dlqTopic := c.topic(t, "-dlq", 2, nil)
	group := c.group(t, "-g")
	progress := c.group(t, "-g.redrive")
	es := seedDLQ(t, c, source, dlqTopic, group, group, 30)
	f := c.kf.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: progress, Err: kerr.GroupAuthorizationFailed, Count: 1})
	defer f.Remove()
	o := Redrive{From: dlqTopic, Group: group, MaxRedrives: 3, ProgressGroup: progress, Batch: 5}
	if _, err := o.Run(context.Background(), RedriveDeps{Opts: c.opts()}); err == nil {
		t.Fatal("got nil, want the failed commit reported")
	}
	if _, err := o.Run(context.Background(), RedriveDeps{Opts: c.opts()}); err != nil {
		t.Fatal(err)
	}
	assertEachOnce(t, c.readAll(t, source), es, 5)
}

// assertEachOnce checks that every entry was redriven, and at most
// dupes records more than once.
func assertEachOnce(t *testing.T, rs []*kgo.Record, es []entry, dupes int) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range rs {
		seen[string(r.Key)]++
	}
	extra := 0
	for _, e := range es {
		n := seen["k-"+strconv.Itoa(e.id)]
		if n == 0 {
			t.Errorf("k-%d: never redriven", e.id)
		}
		extra += max(n-1, 0)
	}
	if extra > dupes {
		t.Errorf("got %d duplicates, want at most %d (one round)", extra, dupes)
	}
}

// TestRedriveStopsAtStartEnd checks that records dead-lettered while a
// redrive runs wait for the next one.
func TestRedriveStopsAtStartEnd(t *testing.T) {
	c := startCluster(t)
	source := c.topic(t, "-src", 3, nil)
	dlqTopic := c.topic(t, "-dlq", 2, nil)
	group := c.group(t, "-g")
	seedDLQ(t, c, source, dlqTopic, group, group, 6)
	o := Redrive{From: dlqTopic, Group: group, MaxRedrives: 3, ProgressGroup: c.group(t, "-g.redrive")}
	sum, err := o.Run(context.Background(), RedriveDeps{Opts: c.opts(), Started: func(p RedrivePlan) {
		if p.Total != 6 {
			t.Errorf("got a plan of %d records, want 6", p.Total)
		}
		seedDLQ(t, c, source, dlqTopic, group, group, 4) // dead-lettered meanwhile
	}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 6 {
		t.Errorf("got %s, want the 6 records there at the start", sum)
	}
	sum, err = o.Run(context.Background(), RedriveDeps{Opts: c.opts()})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 4 {
		t.Errorf("next redrive: got %s, want the 4 records dead-lettered meanwhile", sum)
	}
}

// TestRedriveDryRun checks that a dry run reports what it would send and
// changes nothing: no record produced, no progress committed.
func TestRedriveDryRun(t *testing.T) {
	c := startCluster(t)
	source := c.topic(t, "-src", 3, nil)
	dlqTopic := c.topic(t, "-dlq", 2, nil)
	group := c.group(t, "-g")
	progress := c.group(t, "-g.redrive")
	es := seedDLQ(t, c, source, dlqTopic, group, "other", 12)
	var report bytes.Buffer
	o := Redrive{From: dlqTopic, Group: group, Kinds: []string{"decode", "handler"}, MaxRedrives: 3, ProgressGroup: progress, DryRun: true, Batch: 3}
	sum, err := o.Run(context.Background(), RedriveDeps{Opts: c.opts(), Report: &report})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, e := range es {
		if e.group == group && (e.kind == dlq.KindDecode || e.kind == dlq.KindHandler) {
			want++
			if !strings.Contains(report.String(), fmt.Sprintf("to %s (original %s/%d@%d, %s,", source, source, e.origPart, 100+e.id, e.kind)) {
				t.Errorf("k-%d: not in the dry run's report:\n%s", e.id, report.String())
			}
		}
	}
	if sum.Sent != int64(want) || strings.Count(report.String(), "would send") != want || !strings.HasPrefix(sum.String(), fmt.Sprintf("would send %d,", want)) {
		t.Errorf("got %s and %d report lines, want %d", sum, strings.Count(report.String(), "would send"), want)
	}
	if rs := c.readAll(t, source); len(rs) != 0 {
		t.Errorf("got %d records produced, want none", len(rs))
	}
	offs, err := c.adm.FetchOffsets(context.Background(), progress)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		t.Fatal(err)
	}
	if n := len(offs.Offsets().Sorted()); n != 0 {
		t.Errorf("got %d offsets committed in %s, want none", n, progress)
	}
}

// TestRedriveRefusesASecondRun starts a redrive while another is between
// two rounds: the second is refused, naming the first, and sends nothing;
// the first then finishes, and every record was sent once. Before the
// redrive joined its progress group, the second read from the same
// committed progress and sent every record again.
func TestRedriveRefusesASecondRun(t *testing.T) {
	c := startCluster(t)
	source := c.topic(t, "-src", 3, nil)
	dlqTopic := c.topic(t, "-dlq", 2, nil)
	group := c.group(t, "-g")
	progress := c.group(t, "-g.redrive")
	es := seedDLQ(t, c, source, dlqTopic, group, group, 20)
	o := Redrive{From: dlqTopic, Group: group, MaxRedrives: 3, ProgressGroup: progress, Batch: 4}

	running, release := make(chan struct{}), make(chan struct{})
	type result struct {
		sum RedriveSummary
		err error
	}
	first := make(chan result, 1)
	go func() {
		var once bool
		sum, err := o.Run(context.Background(), RedriveDeps{Opts: c.opts(), Progress: func(done, total int64) {
			if !once {
				once = true
				close(running)
				<-release
			}
		}})
		first <- result{sum, err}
	}()
	select {
	case <-running:
	case r := <-first:
		t.Fatalf("the first redrive ended before its second round: %s, %v", r.sum, r.err)
	}

	// A dry run is not refused (it commits nothing) but says that a
	// real run would be.
	dry := o
	dry.DryRun = true
	dsum, err := dry.Run(context.Background(), RedriveDeps{Opts: c.opts()})
	if err != nil || dsum.Running == nil || len(dsum.Running.Members) != 1 || !strings.Contains(dsum.String(), "a real run would be refused now") {
		t.Errorf("a dry run while a redrive runs: got %s, %v; want it run, saying a real run would be refused", dsum, err)
	}
	sum2, err := o.Run(context.Background(), RedriveDeps{Opts: append(c.opts(), kgo.ClientID("second"))})
	close(release)
	var re *ErrRedriveRunning
	if !errors.As(err, &re) {
		t.Errorf("the second redrive: got %s, %v; want *ErrRedriveRunning", sum2, err)
	} else {
		if re.Group != progress || len(re.Members) != 1 {
			t.Errorf("got %+v, want one member of %s named", re, progress)
		}
		t.Logf("the refusal: %v", err)
	}
	if sum2.Sent != 0 || sum2.Read != 0 {
		t.Errorf("the refused redrive read or sent records: %s", sum2)
	}
	r1 := <-first
	if r1.err != nil {
		t.Fatalf("the first redrive: %v (%s)", r1.err, r1.sum)
	}
	if r1.sum.Sent != int64(len(es)) {
		t.Errorf("the first redrive: got %s, want %d sent", r1.sum, len(es))
	}
	assertEachOnce(t, c.readAll(t, source), es, 0)

	// Once the first has finished, a new run is not refused (and finds
	// nothing left to send).
	sum3, err := o.Run(context.Background(), RedriveDeps{Opts: c.opts()})
	if err != nil || sum3.Read != 0 {
		t.Errorf("a redrive after the first finished: got %s, %v; want nothing read and no error", sum3, err)
	}
}

// TestRedrivesStartedTogether starts two redrives at the same moment:
// one runs, the other is refused, and no record is sent twice. Each waits
// after its first round for the other to return, so that they overlap.
func TestRedrivesStartedTogether(t *testing.T) {
	c := startCluster(t)
	source := c.topic(t, "-src", 3, nil)
	dlqTopic := c.topic(t, "-dlq", 2, nil)
	group := c.group(t, "-g")
	progress := c.group(t, "-g.redrive")
	es := seedDLQ(t, c, source, dlqTopic, group, group, 20)
	o := Redrive{From: dlqTopic, Group: group, MaxRedrives: 3, ProgressGroup: progress, Batch: 4}
	errs := make(chan error, 2)
	sent := make(chan int64, 2)
	start := make(chan struct{})
	done := []chan struct{}{make(chan struct{}), make(chan struct{})}
	for i := range 2 {
		go func() {
			<-start
			var once bool
			sum, err := o.Run(context.Background(), RedriveDeps{Opts: c.opts(), Progress: func(int64, int64) {
				if !once {
					once = true
					select {
					case <-done[1-i]:
					case <-time.After(20 * time.Second):
					}
				}
			}})
			close(done[i])
			sent <- sum.Sent
			errs <- err
		}()
	}
	close(start)
	var refused, ok int
	var total int64
	for range 2 {
		total += <-sent
		err := <-errs
		switch {
		case err == nil:
			ok++
		case errors.As(err, new(*ErrRedriveRunning)):
			refused++
		default:
			t.Errorf("a redrive failed: %v", err)
		}
	}
	if ok != 1 || refused != 1 {
		t.Errorf("got %d runs and %d refused, want one of each", ok, refused)
	}
	if total != int64(len(es)) {
		t.Errorf("got %d sent in all, want %d", total, len(es))
	}
	assertEachOnce(t, c.readAll(t, source), es, 0)
}

// TestRedriveFromMissingTopic: a dead-letter topic that does not exist is
// named as such, not taken for another redrive holding the group.
func TestRedriveFromMissingTopic(t *testing.T) {
	c := startCluster(t)
	o := Redrive{From: c.name + "-no-such-dlq", Group: "g", MaxRedrives: 3, ProgressGroup: c.group(t, "-g.redrive")}
	_, err := o.Run(context.Background(), RedriveDeps{Opts: c.opts()})
	if err == nil || !strings.Contains(err.Error(), "dead-letter topic "+o.From+" does not exist") {
		t.Errorf("got %v, want the missing dead-letter topic named", err)
	}
}

// TestRedriveStopsWhenItLosesTheGroup: a redrive whose membership of the
// progress group ends (its session expired: the coordinator forgot it, and
// the client joins again as a new member) stops before its next round. It
// no longer knows that it is the only redrive: another may have joined and
// taken the group while it was out, and both would send every record and
// commit over each other's progress.
func TestRedriveStopsWhenItLosesTheGroup(t *testing.T) {
	c := startCluster(t)
	if c.kf == nil {
		t.Skip("needs kfake's faults")
	}
	source := c.topic(t, "-src", 3, nil)
	dlqTopic := c.topic(t, "-dlq", 2, nil)
	group := c.group(t, "-g")
	progress := c.group(t, "-g.redrive")
	es := seedDLQ(t, c, source, dlqTopic, group, group, 20)
	o := Redrive{From: dlqTopic, Group: group, MaxRedrives: 3, ProgressGroup: progress, Batch: 4}
	opts := append(c.opts(), kgo.HeartbeatInterval(50*time.Millisecond))
	var rounds int
	sum, err := o.Run(context.Background(), RedriveDeps{Opts: opts, Progress: func(int64, int64) {
		rounds++
		if rounds != 1 {
			return
		}
		// The coordinator forgets the member: its next heartbeat is
		// answered UNKNOWN_MEMBER_ID, and the client joins again.
		lost := make(chan struct{})
		var once sync.Once
		hook := func() { once.Do(func() { close(lost) }) }
		testHookProgressLost.Store(&hook)
		defer testHookProgressLost.Store(nil)
		f := c.kf.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Heartbeat}, Group: progress, Err: kerr.UnknownMemberID, Count: 1})
		defer f.Remove()
		select {
		case <-lost:
		case <-time.After(20 * time.Second):
			t.Errorf("the member was not lost within 20s (fault hits %d)", f.Hits())
		}
	}})
	if err == nil || !strings.Contains(err.Error(), "lost its membership") {
		t.Fatalf("got %s, %v; want the redrive stopped for having lost the progress group", sum, err)
	}
	if sum.Sent == 0 || sum.Sent > 4 || rounds != 1 {
		t.Errorf("got %s after %d rounds; want the first round (at most 4) sent and nothing after", sum, rounds)
	}
	// A new run resumes after the committed round and sends the rest once.
	sum2, err := o.Run(context.Background(), RedriveDeps{Opts: c.opts()})
	if err != nil || sum.Sent+sum2.Sent != int64(len(es)) {
		t.Fatalf("the next run: got %s, %v; want the other %d sent", sum2, err, int64(len(es))-sum.Sent)
	}
	assertEachOnce(t, c.readAll(t, source), es, 0)
}

// TestRedrivesOfTwoTopicsRunTogether: the dead-letter topics of one group
// (each source topic has its own, <topic>.dlq) are redriven at the same
// time, both through the group's progress group: each redrive holds its
// own topic, and a second redrive of either topic is still refused.
func TestRedrivesOfTwoTopicsRunTogether(t *testing.T) {
	c := startCluster(t)
	group := c.group(t, "-g")
	progress := c.group(t, "-g.redrive")
	type run struct {
		o  Redrive
		es []entry
		// paused after its first round until release is closed
		running, release chan struct{}
		done             chan error
		sum              RedriveSummary
	}
	var runs []*run
	for _, name := range []string{"-a", "-b"} {
		source := c.topic(t, name+"-src", 3, nil)
		dlqTopic := c.topic(t, name+"-dlq", 2, nil)
		r := &run{
			o:       Redrive{From: dlqTopic, Group: group, MaxRedrives: 3, ProgressGroup: progress, Batch: 4},
			es:      seedDLQ(t, c, source, dlqTopic, group, group, 12),
			running: make(chan struct{}), release: make(chan struct{}), done: make(chan error, 1),
		}
		r.o.Group = group
		runs = append(runs, r)
	}
	for _, r := range runs {
		go func() {
			var once bool
			sum, err := r.o.Run(context.Background(), RedriveDeps{Opts: c.opts(), Progress: func(int64, int64) {
				if !once {
					once = true
					close(r.running)
					<-r.release
				}
			}})
			r.sum = sum
			r.done <- err
		}()
		select {
		case <-r.running:
		case err := <-r.done:
			t.Fatalf("the redrive of %s ended before its second round: %s, %v", r.o.From, r.sum, err)
		}
	}
	// Both hold their topics now: a second redrive of either is refused.
	for _, r := range runs {
		sum, err := r.o.Run(context.Background(), RedriveDeps{Opts: append(c.opts(), kgo.ClientID("second"))})
		if !errors.As(err, new(*ErrRedriveRunning)) || sum.Sent != 0 {
			t.Errorf("a second redrive of %s: got %s, %v; want *ErrRedriveRunning and nothing sent", r.o.From, sum, err)
		}
	}
	for _, r := range runs {
		close(r.release)
	}
	for _, r := range runs {
		if err := <-r.done; err != nil {
			t.Fatalf("the redrive of %s: %v (%s)", r.o.From, err, r.sum)
		}
		if r.sum.Sent != int64(len(r.es)) {
			t.Errorf("the redrive of %s: got %s, want %d sent", r.o.From, r.sum, len(r.es))
		}
	}
}
