package service

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/internal/ops"
)

const redriveSynopsis = `redrive [--from TOPIC] [--to TOPIC] [--kind decode,handler,validation,expired,delivery-limit] [--group GROUP|*]
                [--since T] [--until T] [--partition N] [--limit N] [--max-redrives 3] [--dry-run] [--from-start]
                [--output text|json]`

// redriveCommand is `consumer redrive`: the dead-letter topic's records
// back to the topics they came from. See ops.Redrive.Run.
func (a *app) redriveCommand(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := newFlags("redrive", redriveSynopsis, stderr)
	from := fs.String("from", "", "the dead-letter topic to read (default DLQ_TOPIC, or <topic>.dlq of the only KAFKA_TOPICS entry)")
	to := fs.String("to", "", "send every record to this topic instead of its dlq.original.topic")
	kinds := fs.String("kind", "", "only these dlq.error.kind values, comma separated: decode, handler, validation, expired, delivery-limit")
	group := fs.String("group", "", "only records dead-lettered by this group (dlq.consumer.group; default KAFKA_GROUP_ID; * for every group)")
	since := fs.String("since", "", "only records that failed at or after this: an RFC 3339 time, or a duration ago such as 2h")
	until := fs.String("until", "", "only records that failed at or before this: an RFC 3339 time, or a duration ago")
	partition := fs.Int("partition", -1, "only this partition of the dead-letter topic")
	limit := fs.Int64("limit", 0, "stop after sending this many records (0: no limit)")
	maxRedrives := fs.Int("max-redrives", ops.DefaultMaxRedrives, "skip (and report) records already redriven this many times (the dlq.redrive.count header)")
	dryRun := fs.Bool("dry-run", false, "print what would be sent; send and commit nothing")
	fromStart := fs.Bool("from-start", false, "ignore the progress of earlier redrives and read the dead-letter topic from its start")
	output := outputFlag(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	asJSON, ok := jsonOutput(*output, stderr)
	if !ok {
		return exitConfig
	}
	env, code, ok := a.opsSetup(lookup, stderr)
	if !ok {
		return code
	}
	defer env.done()
	now := time.Now()
	o := ops.Redrive{
		From: *from, To: *to, Group: *group,
		Limit: *limit, MaxRedrives: *maxRedrives, DryRun: *dryRun, FromStart: *fromStart,
		ProgressGroup: env.cfg.Kafka.GroupID + ".redrive",
	}
	var problems []string
	if o.From == "" {
		if dlqs := env.cfg.DLQTopics(); len(dlqs) == 1 {
			o.From = dlqs[0]
		} else {
			problems = append(problems, "--from: KAFKA_TOPICS has several dead-letter topics; name one")
		}
	}
	if o.Group == "" {
		o.Group = env.cfg.Kafka.GroupID
	}
	for k := range strings.SplitSeq(*kinds, ",") {
		switch k = strings.TrimSpace(strings.ToLower(k)); k {
		case "":
		case "decode", "handler", "validation", "expired", "delivery-limit":
			o.Kinds = append(o.Kinds, k)
		default:
			problems = append(problems, fmt.Sprintf("--kind %q: expected decode, handler, validation, expired or delivery-limit", k))
		}
	}
	var err error
	if o.Since, err = parseWhen(*since, now); err != nil {
		problems = append(problems, "--since: "+err.Error())
	}
	if o.Until, err = parseWhen(*until, now); err != nil {
		problems = append(problems, "--until: "+err.Error())
	}
	if *partition >= 0 {
		o.Partitions = []int32{int32(*partition)}
	}
	if *limit < 0 {
		problems = append(problems, "--limit: expected a number >= 0")
	}
	if *maxRedrives < 1 {
		problems = append(problems, "--max-redrives: expected a number >= 1")
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, p)
		}
		return exitConfig
	}

	ctx := env.ctx
	prog := newProgress(stderr, env.log, time.Now)
	var report io.Writer = stdout
	lines := &lineCollector{}
	if asJSON {
		report = lines
	}
	d := ops.RedriveDeps{
		Opts:   env.opts,
		Report: &lockedWriter{w: report, before: prog.clear},
		Started: func(p ops.RedrivePlan) {
			mode := ""
			if o.DryRun {
				mode = " (dry run: nothing is sent or committed)"
			}
			env.log.Info(fmt.Sprintf("redriving %d records of %s%s", p.Total, o.From, mode),
				zap.String("from", o.From), zap.String("to", o.To), zap.String("group", o.Group),
				zap.String("progress_group", o.ProgressGroup), zap.Any("from_offsets", p.From), zap.Any("end_offsets", p.End))
			prog.start(p.Total)
		},
		Progress: prog.update,
	}
	sum, err := o.Run(ctx, d)
	prog.finish()
	where := "progress in group " + o.ProgressGroup
	if o.DryRun {
		where = "dry run: nothing sent or committed"
	}
	code = exitOK
	if err != nil {
		code = exitRuntime
	}
	if asJSON {
		doc := redriveJSON{From: o.From, ProgressGroup: o.ProgressGroup, DryRun: o.DryRun,
			Read: sum.Read, Sent: sum.Sent, LoopGuarded: sum.LoopGuarded, Invalid: sum.Invalid, NotMatching: sum.NotMatching,
			Limited: sum.Limited, Report: lines.lines()}
		running := sum.Running
		if err != nil {
			doc.Error = err.Error()
			running, _ = errors.AsType[*ops.ErrRedriveRunning](err)
		}
		if running != nil {
			doc.Running = membersJSON(running.Members)
		}
		writeJSON(stdout, doc)
		if err != nil {
			fmt.Fprintf(stderr, "redrive %s failed: %v\n", o.From, err)
		}
		return code
	}
	if _, ok := errors.AsType[*ops.ErrRedriveRunning](err); ok {
		fmt.Fprintf(stdout, "redrive %s refused: %v\n", o.From, err)
		return code
	}
	if err != nil {
		fmt.Fprintf(stdout, "redrive %s failed: %v; %s (%s; run it again to resume)\n", o.From, err, sum, where)
		return code
	}
	fmt.Fprintf(stdout, "redrive %s: %s (%s)\n", o.From, sum, where)
	return code
}

// redriveJSON is `consumer redrive --output json`: the summary's counts
// (sent: what a dry run would send), the report's lines (records skipped,
// or in a dry run each record that would be sent), running: the members
// of the redrive that refuses (or, in a dry run, would refuse) this one,
// and error when it failed.
type redriveJSON struct {
	From          string       `json:"from"`
	ProgressGroup string       `json:"progress_group"`
	DryRun        bool         `json:"dry_run"`
	Read          int64        `json:"read"`
	Sent          int64        `json:"sent"`
	LoopGuarded   int64        `json:"loop_guarded"`
	Invalid       int64        `json:"not_redrivable"`
	NotMatching   int64        `json:"not_matching"`
	Limited       bool         `json:"limited"`
	Report        []string     `json:"report"`
	Running       []memberJSON `json:"running,omitempty"`
	Error         string       `json:"error,omitempty"`
}

// lineCollector keeps the lines written to it.
type lineCollector struct{ b strings.Builder }

func (l *lineCollector) Write(p []byte) (int, error) { return l.b.Write(p) }

func (l *lineCollector) lines() []string {
	out := []string{}
	for line := range strings.SplitSeq(strings.TrimSuffix(l.b.String(), "\n"), "\n") {
		if line != "" {
			out = append(out, line)
		}
	}
	return out
}

// parseWhen reads an RFC 3339 time, or a duration before now; "" is zero.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: expected an RFC 3339 time such as 2026-11-22T11:30:00Z, or a duration ago such as 90m", s)
}

// lockedWriter serializes writes and clears the progress bar before each.
type lockedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	before func()
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.before()
	return l.w.Write(p)
}

// progress shows a redrive's progress: a bar redrawn in place on a
// terminal, otherwise a log line at most every 5 seconds.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	log      *zap.Logger
	now      func() time.Time
	began    time.Time
	lastLog  time.Time
	total    int64
	done     int64
	drawn    bool
	finished bool
}

func newProgress(w io.Writer, log *zap.Logger, now func() time.Time) *progress {
	return &progress{w: w, tty: isTerminal(w), log: log, now: now}
}

func (p *progress) start(total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total, p.began, p.lastLog = total, p.now(), p.now()
	p.draw()
}

func (p *progress) update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.total = done, total
	if p.tty {
		p.draw()
		return
	}
	if now := p.now(); now.Sub(p.lastLog) >= 5*time.Second || done == total {
		p.lastLog = now
		rate, eta := p.rate()
		p.log.Info(fmt.Sprintf("redrive: %d of %d records read", done, total),
			zap.Int64("done", done), zap.Int64("total", total), zap.Float64("records_per_second", rate), zap.Duration("eta", eta))
	}
}

// rate is the records read per second so far and the time left at it.
func (p *progress) rate() (float64, time.Duration) {
	el := p.now().Sub(p.began).Seconds()
	if el <= 0 || p.done == 0 {
		return 0, 0
	}
	r := float64(p.done) / el
	return r, time.Duration(float64(p.total-p.done) / r * float64(time.Second)).Round(time.Second)
}

// draw redraws the bar; p.mu is held.
func (p *progress) draw() {
	if !p.tty || p.finished {
		return
	}
	const width = 30
	frac := 1.0
	if p.total > 0 {
		frac = float64(p.done) / float64(p.total)
	}
	n := int(frac * width)
	rate, eta := p.rate()
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d %3.0f%% %.0f rec/s ETA %s \x1b[K",
		strings.Repeat("=", n), strings.Repeat(" ", width-n), p.done, p.total, frac*100, rate, eta)
	p.drawn = true
}

// clear erases the bar so that a line can be printed; it is redrawn at
// the next update.
func (p *progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
	}
	p.finished = true
}
