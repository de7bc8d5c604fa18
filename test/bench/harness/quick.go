package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// -only quick (make bench-quick): cases 1 to 4 and 3k (case 3 in key order)
// at each size, the service built from the current tree against a previous build (-consumer-old), one
// run of each per round, in turns (old and new alternate, which goes first
// alternating too), so that the machine's drift falls on both. It prints
// new/old per case and fails when one is below -quick-min: a guard
// against a slowdown of the pipeline, not a measurement to quote (make
// bench is).
var (
	consumerOld = flag.String("consumer-old", "", "-only quick: the previous build of the service")
	quickMin    = flag.Float64("quick-min", 0.8, "-only quick: the lowest new/old ratio that passes")
	quickEnv    = flag.String("quick-env", "", "-only quick: extra environment of every service run, as K=V pairs separated by spaces (to try a setting on both builds)")
	quickOnlyRe = flag.String("quick-cases", "", "-only quick: run only the cases whose name matches this regular expression (the ceiling always runs)")
)

type quickCase struct {
	name, format, handler string
	env                   []string
}

var quickCases = []quickCase{
	{"2 bytes+discard", "bytes", "discard", nil},
	{"3 avro+discard", "avro", "discard", nil},
	{"3k avro+discard, key order", "avro", "discard", keyOrder},
	{"4 avro+http", "avro", "http", nil},
}

func quickOnly(ctx context.Context, adm *kadm.Client, sizes []int) error {
	if *consumerOld == "" {
		return fmt.Errorf("-only quick needs -consumer-old")
	}
	cases, err := selectCases(*quickOnlyRe)
	if err != nil {
		return err
	}
	n := int64(*records)
	topics, err := preloadSizes(ctx, adm, sizes)
	if err != nil {
		return err
	}
	sink := newSink()
	defer sink.Close()
	type key struct {
		size int
		c    string
	}
	newR, oldR, ceil := map[key][]float64{}, map[key][]float64{}, map[int][]float64{}
	turn := 0
	for r := 1; r <= *rounds; r++ {
		for _, s := range sizes {
			t := topics[s]
			res := ceiling(t, n)
			logf("quick %d B 1 ceiling round %d: %.0f records/s %s", s, r, res.Rate, res.Err)
			if res.Err == "" {
				ceil[s] = append(ceil[s], res.Rate)
			}
			for _, c := range cases {
				k := key{s, c.name}
				runs := []struct {
					bin string
					to  map[key][]float64
					who string
				}{{*consumer, newR, "new"}, {*consumerOld, oldR, "old"}}
				if turn%2 == 1 {
					runs[0], runs[1] = runs[1], runs[0]
				}
				turn++
				for _, run := range runs {
					res := serviceBin(run.bin, t, n, c.format, c.handler, sink, append(strings.Fields(*quickEnv), c.env...))
					logf("quick %d B %s %s round %d: %.0f records/s, longest stall %.2fs at %d %s", s, c.name, run.who, r, res.Rate, res.Stall, res.StallAt, res.Err)
					if res.Err != "" {
						return fmt.Errorf("%s %d B %s: %s", run.who, s, c.name, res.Err)
					}
					run.to[k] = append(run.to[k], res.Rate)
				}
			}
		}
	}
	var md strings.Builder
	fmt.Fprintf(&md, "Command: `%s`  \nMachine: %s  \nDate: %s; load average at start %s  \nBroker: %s; %d records per size, %d round(s); old: %s\n\n",
		out.Command, out.Machine, out.Date, out.Load, out.Broker, n, *rounds, *consumerOld)
	md.WriteString("| size | case | new records/s | old records/s | new × ceiling | old × ceiling | new/old |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: |\n")
	var failed []string
	for _, s := range sizes {
		cl := medianOf(ceil[s])
		fmt.Fprintf(&md, "| %d B | 1 ceiling | %.0f | | | | |\n", s, cl)
		for _, c := range cases {
			k := key{s, c.name}
			nw, od := medianOf(newR[k]), medianOf(oldR[k])
			ratio := nw / od
			fmt.Fprintf(&md, "| %d B | %s | %.0f | %.0f | %.2f | %.2f | %.2f |\n", s, c.name, nw, od, nw/cl, od/cl, ratio)
			if !(ratio >= *quickMin) {
				failed = append(failed, fmt.Sprintf("%d B %s: %.2f", s, c.name, ratio))
			}
		}
	}
	if len(cases) == len(quickCases) {
		md.WriteString("\nKey order against partition order (case 3k / case 3, the goal is ≥ 0.9):\n\n| size | new | old |\n| ---: | ---: | ---: |\n")
		for _, s := range sizes {
			k, p := key{s, "3k avro+discard, key order"}, key{s, "3 avro+discard"}
			fmt.Fprintf(&md, "| %d B | %.2f | %.2f |\n", s, medianOf(newR[k])/medianOf(newR[p]), medianOf(oldR[k])/medianOf(oldR[p]))
		}
	}
	out.LoadEnd = loadavg()
	fmt.Fprintf(&md, "\nLoad average at the end: %s\n", out.LoadEnd)
	fmt.Println(md.String())
	if err := os.WriteFile(*outMD, []byte(md.String()), 0o644); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("new/old below %.2f: %s", *quickMin, strings.Join(failed, "; "))
	}
	return nil
}

// selectCases returns the quick cases whose name matches expr (all for
// ""); none matching is an error, so that a typo does not pass.
func selectCases(expr string) ([]quickCase, error) {
	if expr == "" {
		return quickCases, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("-quick-cases: %w", err)
	}
	var cs []quickCase
	for _, c := range quickCases {
		if re.MatchString(c.name) {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("-quick-cases %q matches no case", expr)
	}
	return cs, nil
}

// preloadSizes creates a topic of -records records for each size, named
// by the size, and returns them by size.
func preloadSizes(ctx context.Context, adm *kadm.Client, sizes []int) (map[int]string, error) {
	topics := map[int]string{}
	for _, s := range sizes {
		t := fmt.Sprintf("%s-s%d", prefix, s)
		if err := createTopics(ctx, adm, t); err != nil {
			return nil, err
		}
		avg, err := preload(ctx, t, *records, s, 0)
		if err != nil {
			return nil, err
		}
		out.Sizes[s] = avg
		topics[s] = t
	}
	return topics, nil
}
