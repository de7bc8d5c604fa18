package service

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/internal/ops"
)

// offsetsCommand is `consumer offsets` (list) and `consumer offsets
// reset`.
func (a *app) offsetsCommand(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "reset" {
		return a.offsetsReset(args[1:], lookup, stdout, stderr)
	}
	fs := newFlags("offsets", "offsets [--topic T,...]\n       consumer offsets reset --to earliest|latest|<RFC 3339 time>|<offset> [--topic T] [--partition N] [--yes] [--dry-run]", stderr)
	topicFlag := fs.String("topic", "", "only these topics, comma separated (default KAFKA_TOPICS)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	env, code, ok := a.opsSetup(lookup, stderr)
	if !ok {
		return code
	}
	defer env.done()
	ctx := env.ctx
	topics := selectTopics(*topicFlag, env.cfg.Kafka.Topics)
	group := env.cfg.Kafka.GroupID
	pos, members, err := ops.Offsets(ctx, env.opts, group, topics)
	if err != nil {
		fmt.Fprintln(stderr, "offsets:", err)
		return exitRuntime
	}
	fmt.Fprintf(stdout, "group %s: %d active members\n", group, len(members))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tNEXT RECORD AT\tMEMBER")
	var lag int64
	for _, p := range pos {
		committed := "-"
		if p.Committed >= 0 {
			committed = fmt.Sprint(p.Committed)
		}
		next := "-"
		if !p.Next.IsZero() {
			next = p.Next.UTC().Format(time.RFC3339Nano)
		}
		member := p.Member
		if member == "" {
			member = "-"
		}
		lag += p.Lag
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\n", p.Topic, p.Partition, committed, p.End, p.Lag, next, member)
	}
	_ = tw.Flush()
	fmt.Fprintf(stdout, "total lag: %d records\n", lag)
	return exitOK
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
// the group has members.
func (a *app) offsetsReset(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := newFlags("offsets reset", "offsets reset --to earliest|latest|<RFC 3339 time>|<offset> [--topic T] [--partition N] [--yes] [--dry-run]", stderr)
	toFlag := fs.String("to", "", "where to move the group: earliest, latest, an RFC 3339 time (the first record at or after it) or an offset (required)")
	topicFlag := fs.String("topic", "", "only these topics, comma separated (default KAFKA_TOPICS)")
	partition := fs.Int("partition", -1, "only this partition")
	yes := fs.Bool("yes", false, "apply without asking")
	dryRun := fs.Bool("dry-run", false, "print the plan; change nothing")
	if code, ok := parseFlags(fs, args); !ok {
		return code
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
		fmt.Fprintln(stderr, "offsets reset:", err)
		return exitRuntime
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	group := env.cfg.Kafka.GroupID
	topics := selectTopics(*topicFlag, env.cfg.Kafka.Topics)
	plan, err := ops.Plan(ctx, adm, group, topics, int32(*partition), to)
	if err != nil {
		fmt.Fprintln(stderr, "offsets reset:", err)
		return exitRuntime
	}
	fmt.Fprintf(stdout, "reset group %s to %s:\n", group, to)
	var replay, skip int64
	for _, m := range plan {
		old := "none"
		if m.Old >= 0 {
			old = fmt.Sprint(m.Old)
		}
		effect := "unchanged"
		switch d := m.Delta(); {
		case d > 0:
			effect = fmt.Sprintf("replays %d records", d)
			replay += d
		case d < 0:
			effect = fmt.Sprintf("skips %d records", -d)
			skip -= d
		}
		fmt.Fprintf(stdout, "  %s/%d: %s → %d (%s)\n", m.Topic, m.Partition, old, m.New, effect)
	}
	fmt.Fprintf(stdout, "in all: %d records replayed, %d skipped\n", replay, skip)

	members, _, err := ops.Group(ctx, adm, group)
	if err != nil {
		fmt.Fprintln(stderr, "offsets reset:", err)
		return exitRuntime
	}
	if len(members) > 0 {
		fmt.Fprintln(stderr, "refused:", (&ops.ErrActiveMembers{Group: group, Members: members}).Error())
		return exitRuntime
	}
	if *dryRun {
		fmt.Fprintln(stdout, "dry run: nothing changed")
		return exitOK
	}
	if !*yes {
		if !isTerminal(os.Stdin) || !isTerminal(stdout) {
			fmt.Fprintln(stderr, "not applied: pass --yes to apply (or run it on a terminal to confirm)")
			return exitRuntime
		}
		fmt.Fprintf(stdout, "type yes to apply: ")
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			fmt.Fprintln(stdout, "not applied")
			return exitRuntime
		}
	}
	if err := ops.Apply(ctx, adm, group, plan); err != nil {
		if ae, ok := errors.AsType[*ops.ErrActiveMembers](err); ok {
			fmt.Fprintln(stderr, "refused:", ae.Error())
		} else {
			fmt.Fprintln(stderr, "offsets reset:", err)
		}
		return exitRuntime
	}
	fmt.Fprintf(stdout, "applied: group %s committed at the new offsets\n", group)
	return exitOK
}
