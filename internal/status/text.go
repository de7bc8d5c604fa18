package status

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// WriteText writes v for a terminal (consumer status): the same sections
// as the page, without the charts (their last sample instead).
func WriteText(w io.Writer, v View) {
	ready := "ready"
	if !v.Ready {
		ready = "NOT READY"
	}
	member := v.Group.Member
	if member == "" {
		member = "(not joined)"
	}
	fmt.Fprintf(w, "consumer %s (commit %s), up %s, %s\n", v.Version, v.Commit, fmtSeconds(v.UptimeSeconds), ready)
	fmt.Fprintf(w, "group %s, member %s, generation %d, protocol %s\n", v.Group.ID, member, v.Group.Generation, v.Group.Protocol)
	if n := len(v.History.Samples); n > 0 {
		s := v.History.Samples[n-1]
		fmt.Fprintf(w, "last %s: %s records/s, batch latency %s, lag %d records, oldest %s\n",
			fmtSeconds(v.History.EverySeconds), fmtNumber(s.RecordsPerSecond), fmtSeconds(s.LatencySeconds), s.LagRecords, fmtSeconds(s.LagSeconds))
	}

	fmt.Fprintln(w, "\nstalls:")
	if len(v.Stalls) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, s := range v.Stalls {
		mark := ""
		if s.Unready {
			mark = " (past UNREADY_AFTER)"
		}
		fmt.Fprintf(w, "  %s for %s%s: %s\n", s.Key, fmtSeconds(s.Seconds), mark, s.Reason)
	}

	fmt.Fprintln(w, "\npartitions:")
	if len(v.Partitions) == 0 {
		fmt.Fprintln(w, "  none assigned")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  PARTITION\tCOMMITTED\tNEXT\tEND\tLAG\tLAG TIME\tFETCHING\tLANE\tQUEUED\tBATCH IN FLIGHT\tAGE\tATTEMPT\tSTALL")
		for _, p := range v.Partitions {
			fetching := "flowing"
			if p.Paused {
				fetching = "paused"
			}
			for i, l := range p.Lanes {
				head := "\t\t\t\t\t\t"
				if i == 0 {
					lag := "?"
					if p.LagSeconds != nil {
						lag = fmtSeconds(*p.LagSeconds)
					}
					head = fmt.Sprintf("%s/%d\t%s\t%s\t%s\t%d\t%s\t%s", p.Topic, p.Partition, fmtOffset(p.Committed), fmtOffset(p.Next), fmtOffset(p.End), p.LagRecords, lag, fetching)
				}
				batch, age, attempt := "idle", "", ""
				if b := l.Batch; b != nil {
					batch = fmt.Sprintf("%d records, offsets %d-%d", b.Records, b.FirstOffset, b.LastOffset)
					age = fmtSeconds(b.AgeSeconds)
					attempt = "no call"
					if b.Attempt > 0 {
						attempt = strconv.Itoa(b.Attempt) + " (call " + fmtSeconds(b.CallSeconds) + ")"
					}
				}
				stall := l.Stall
				if stall == "" {
					stall = "-"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%s\t%s\n", head, l.Name, l.Queued, batch, age, attempt, stall)
			}
		}
		_ = tw.Flush()
	}

	fmt.Fprintf(w, "\nlast %d dead letters:\n", len(v.DeadLetters))
	if len(v.DeadLetters) == 0 {
		fmt.Fprintln(w, "  none since the start")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TIME\tTOPIC\tPARTITION\tOFFSET\tKIND\tMESSAGE")
	for _, d := range v.DeadLetters {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\t%s\n", d.Time.UTC().Format("2006-01-02 15:04:05Z"), d.Topic, d.Partition, d.Offset, d.Kind, d.Message)
	}
	_ = tw.Flush()
}
