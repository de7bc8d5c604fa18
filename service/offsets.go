package service

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/ops"
)

// offsetsCommand is `consumer offsets` (list) and `consumer offsets
// reset`.
func (a *app) offsetsCommand(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "reset" {
		return a.offsetsReset(args[1:], lookup, stdout, stderr)
	}
	fs := newFlags("offsets", "offsets [--topic T,...] [--output text|json]\n       consumer offsets reset --to earliest|latest|<RFC 3339 time>|<duration ago>|<offset> [--topic T] [--partition N] [--yes] [--dry-run] [--output text|json]", stderr)
	topicFlag := fs.String("topic", "", "only these topics, comma separated (default KAFKA_TOPICS)")
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
	ctx := env.ctx
	topics := selectTopics(*topicFlag, env.cfg.Kafka.Topics)
	group := env.cfg.Kafka.GroupID
	share := env.cfg.Kafka.GroupType == config.GroupTypeShare
	list, kind, column := ops.Offsets, "group", "COMMITTED"
	if share {
		list, kind, column = ops.ShareOffsets, "share group", "START OFFSET"
	}
	pos, members, err := list(ctx, env.opts, group, topics)
	if err != nil {
		return failed(stdout, stderr, asJSON, "offsets", err)
	}
	var lag int64
	for _, p := range pos {
		lag += p.Lag
	}
	if asJSON {
		doc := offsetsJSON{Group: group, GroupType: string(env.cfg.Kafka.GroupType), Members: membersJSON(members), Partitions: []partitionJSON{}, TotalLag: lag}
		for _, p := range pos {
			pj := partitionJSON{Topic: p.Topic, Partition: p.Partition, Start: p.Start, End: p.End, Lag: p.Lag}
			if p.Committed >= 0 {
				pj.Committed = &p.Committed
			}
			if !p.Next.IsZero() {
				at := p.Next.UTC().Format(ops.TimeFormat)
				pj.NextRecordAt = &at
			}
			if p.Member != "" {
				pj.Member = &p.Member
			}
			doc.Partitions = append(doc.Partitions, pj)
		}
		writeJSON(stdout, doc)
		return exitOK
	}
	fmt.Fprintf(stdout, "%s %s: %s\n", kind, group, ops.Count(len(members), "active member"))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\t"+column+"\tEND\tLAG\tNEXT RECORD AT\tMEMBER")
	for _, p := range pos {
		committed := "-"
		if p.Committed >= 0 {
			committed = fmt.Sprint(p.Committed)
		}
		next := "-"
		if !p.Next.IsZero() {
			next = p.Next.UTC().Format(ops.TimeFormat)
		}
		member := p.Member
		if member == "" {
			member = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\n", p.Topic, p.Partition, committed, p.End, p.Lag, next, member)
	}
	_ = tw.Flush()
	fmt.Fprintf(stdout, "total lag: %s\n", ops.Count(int(lag), "record"))
	return exitOK
}

// offsetsJSON is `consumer offsets --output json`.
type offsetsJSON struct {
	Group      string          `json:"group"`
	GroupType  string          `json:"group_type"` // consumer, or share: committed is then the share-partition start offset
	Members    []memberJSON    `json:"members"`
	Partitions []partitionJSON `json:"partitions"`
	TotalLag   int64           `json:"total_lag"`
}

// partitionJSON is one partition of offsetsJSON; committed,
// next_record_at and member are null when there is none.
type partitionJSON struct {
	Topic        string  `json:"topic"`
	Partition    int32   `json:"partition"`
	Committed    *int64  `json:"committed"`
	Start        int64   `json:"start"`
	End          int64   `json:"end"`
	Lag          int64   `json:"lag"`
	NextRecordAt *string `json:"next_record_at"`
	Member       *string `json:"member"`
}

// memberJSON is a group member in the commands' JSON output.
type memberJSON struct {
	ID         string `json:"id"`
	InstanceID string `json:"instance_id,omitempty"`
	ClientID   string `json:"client_id"`
	Host       string `json:"host"`
}

func membersJSON(ms []ops.Member) []memberJSON {
	out := []memberJSON{}
	for _, m := range ms {
		out = append(out, memberJSON{ID: m.ID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.Host})
	}
	return out
}

// outputFlag is the --output flag of the operator commands.
func outputFlag(fs *flag.FlagSet) *string {
	return fs.String("output", "text", "text, or json: one JSON document on stdout, for scripts")
}

// jsonOutput reads --output; a value other than text or json is a usage
// error (exit 2).
func jsonOutput(v string, stderr io.Writer) (asJSON, ok bool) {
	switch v {
	case "text":
		return false, true
	case "json":
		return true, true
	}
	fmt.Fprintf(stderr, "--output %q: expected text or json\n", v)
	return false, false
}

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// failed reports a command's runtime error on stderr and, with --output
// json, as {"error": "..."} on stdout; it returns exit 1.
func failed(stdout, stderr io.Writer, asJSON bool, cmd string, err error) int {
	fmt.Fprintln(stderr, cmd+":", err)
	if asJSON {
		writeJSON(stdout, struct {
			Error string `json:"error"`
		}{err.Error()})
	}
	return exitRuntime
}

// selectTopics is --topic's list, or the configured topics.
func selectTopics(flag string, def []string) []string {
	var out []string
	for t := range strings.SplitSeq(flag, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return def
	}
	return out
}

// offsetsReset is `consumer offsets reset`: it prints the plan and
// applies it with --yes or a confirmation typed on a terminal, never while
// the group has members. A dry run prints the plan, and whether a real
// run would be refused, and exits 0.
func (a *app) offsetsReset(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := newFlags("offsets reset", "offsets reset --to earliest|latest|<RFC 3339 time>|<duration ago>|<offset> [--topic T] [--partition N] [--yes] [--dry-run] [--output text|json]", stderr)
	toFlag := fs.String("to", "", "where to move the group: earliest, latest, an RFC 3339 time or a duration ago such as 2h (the first record at or after it), or an offset (required)")
	topicFlag := fs.String("topic", "", "only these topics, comma separated (default KAFKA_TOPICS)")
	partition := fs.Int("partition", -1, "only this partition")
	yes := fs.Bool("yes", false, "apply without asking")
	dryRun := fs.Bool("dry-run", false, "print the plan; change nothing")
	output := outputFlag(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	asJSON, ok := jsonOutput(*output, stderr)
	if !ok {
		return exitConfig
	}
	if *toFlag == "" {
		fmt.Fprintln(stderr, "--to is required")
		fs.Usage()
		return exitConfig
	}
	to, err := ops.ParseTarget(*toFlag)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	env, code, ok := a.opsSetup(lookup, stderr)
	if !ok {
		return code
	}
	defer env.done()
	ctx := env.ctx
	cl, err := kgo.NewClient(env.opts...)
	if err != nil {
		return failed(stdout, stderr, asJSON, "offsets reset", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	group := env.cfg.Kafka.GroupID
	topics := selectTopics(*topicFlag, env.cfg.Kafka.Topics)
	share := env.cfg.Kafka.GroupType == config.GroupTypeShare
	planFor, describe, apply, kind := ops.Plan, ops.Group, ops.Apply, "group"
	if share {
		planFor, describe, apply, kind = ops.SharePlan, ops.ShareGroup, ops.ApplyShare, "share group"
	}
	plan, err := planFor(ctx, adm, group, topics, int32(*partition), to)
	if err != nil {
		return failed(stdout, stderr, asJSON, "offsets reset", err)
	}
	doc := resetJSON{Group: group, To: to.String(), Moves: []moveJSON{}, DryRun: *dryRun, Members: []memberJSON{}}
	text := io.Writer(stdout)
	if asJSON {
		text = io.Discard
	}
	fmt.Fprintf(text, "reset %s %s to %s:\n", kind, group, to)
	for _, m := range plan {
		old := "none"
		mj := moveJSON{Topic: m.Topic, Partition: m.Partition, New: m.New, Delta: m.Delta()}
		if m.Old >= 0 {
			old = fmt.Sprint(m.Old)
			mj.Old = &m.Old
		}
		doc.Moves = append(doc.Moves, mj)
		effect := "unchanged"
		switch d := m.Delta(); {
		case d > 0:
			effect = "replays " + ops.Count(int(d), "record")
			doc.Replayed += d
		case d < 0:
			effect = "skips " + ops.Count(int(-d), "record")
			doc.Skipped -= d
		}
		fmt.Fprintf(text, "  %s/%d: %s → %d (%s)\n", m.Topic, m.Partition, old, m.New, effect)
	}
	fmt.Fprintf(text, "in all: %s replayed, %d skipped\n", ops.Count(int(doc.Replayed), "record"), doc.Skipped)
	done := func(code int) int {
		if asJSON {
			writeJSON(stdout, doc)
		}
		return code
	}

	members, _, err := describe(ctx, adm, group)
	if err != nil {
		return failed(stdout, stderr, asJSON, "offsets reset", err)
	}
	doc.Members = membersJSON(members)
	var refusal string
	if len(members) > 0 {
		refusal = (&ops.ErrActiveMembers{Group: group, Members: members}).Error()
		doc.Refused = refusal
	}
	if *dryRun {
		if refusal != "" {
			fmt.Fprintln(text, "dry run: nothing changed; a real run would be refused:", refusal)
		} else {
			fmt.Fprintln(text, "dry run: nothing changed")
		}
		return done(exitOK)
	}
	if refusal != "" {
		fmt.Fprintln(stderr, "refused:", refusal)
		return done(exitRuntime)
	}
	if !*yes {
		if asJSON || !isTerminal(os.Stdin) || !isTerminal(stdout) {
			fmt.Fprintln(stderr, "not applied: pass --yes to apply (or run it on a terminal, without --output json, to confirm)")
			return done(exitRuntime)
		}
		fmt.Fprintf(stdout, "type yes to apply: ")
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			fmt.Fprintln(stdout, "not applied")
			return exitRuntime
		}
	}
	if err := apply(ctx, adm, group, plan); err != nil {
		if ae, ok := errors.AsType[*ops.ErrActiveMembers](err); ok {
			fmt.Fprintln(stderr, "refused:", ae.Error())
			doc.Refused = ae.Error()
			doc.Members = membersJSON(ae.Members)
			return done(exitRuntime)
		}
		return failed(stdout, stderr, asJSON, "offsets reset", err)
	}
	doc.Applied = true
	if share {
		fmt.Fprintf(text, "applied: share group %s starts at the new offsets\n", group)
	} else {
		fmt.Fprintf(text, "applied: group %s committed at the new offsets\n", group)
	}
	return done(exitOK)
}

// resetJSON is `consumer offsets reset --output json`. refused says why a
// real run is (or, in a dry run, would be) refused; applied whether the
// new offsets were committed.
type resetJSON struct {
	Group    string       `json:"group"`
	To       string       `json:"to"`
	Moves    []moveJSON   `json:"moves"`
	Replayed int64        `json:"replayed"`
	Skipped  int64        `json:"skipped"`
	DryRun   bool         `json:"dry_run"`
	Applied  bool         `json:"applied"`
	Refused  string       `json:"refused,omitempty"`
	Members  []memberJSON `json:"members"`
}

// moveJSON is one partition of a reset plan; old is null when nothing was
// committed; delta > 0 replays, < 0 skips.
type moveJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Old       *int64 `json:"old"`
	New       int64  `json:"new"`
	Delta     int64  `json:"delta"`
}
