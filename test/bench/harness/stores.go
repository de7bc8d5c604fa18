package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// The idempotency stores' cost (issue 13): the service on one preloaded
// topic of 1 KB Avro records with the discard handler, once per store,
// each run a fresh group (and so fresh keys): records/s with
// IDEMPOTENCY_STORE=none against redis (scripts/redis/up.sh, started by
// scripts/bench.sh for -only stores). DynamoDB is left out: the emulator
// here (moto) measures itself, not DynamoDB (see docs/BENCHMARKS.md).
var (
	storeRecords = flag.Int("store-records", 200000, "records of the idempotency stores' topic")
	storeRounds  = flag.Int("store-rounds", 3, "runs per store; the median is reported")
	redisURL     = flag.String("redis-url", "redis://127.0.0.1:16379/0", "REDIS_URL of the redis case")
)

type storeCase struct {
	name string
	env  []string
}

func storesOnly(ctx context.Context, adm *kadm.Client) error {
	topic := prefix + "-stores"
	if _, err := adm.CreateTopic(ctx, int32(*partitions), 1, nil, topic); err != nil {
		return fmt.Errorf("create %s: %w", topic, err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic+".dlq"); err != nil {
		return fmt.Errorf("create %s.dlq: %w", topic, err)
	}
	if _, err := preload(ctx, topic, *storeRecords, 1024, 0); err != nil {
		return err
	}
	cases := []storeCase{
		{"none", nil},
		{"redis", []string{"IDEMPOTENCY_STORE=redis", "REDIS_URL=" + *redisURL}},
	}
	var md strings.Builder
	fmt.Fprintf(&md, "Command: `%s`  \nMachine: %s  \nDate: %s; load average at start %s  \nBroker: %s\n\n",
		out.Command, out.Machine, out.Date, out.Load, out.Broker)
	md.WriteString("| IDEMPOTENCY_STORE | records/s (median) | runs | × none |\n| --- | ---: | --- | ---: |\n")
	// Rounds interleave the stores, so that a change of load on the
	// machine falls on all of them alike.
	rates := make([][]float64, len(cases))
	errs := make([][]string, len(cases))
	for r := 1; r <= *storeRounds; r++ {
		for i, c := range cases {
			res := service(topic, int64(*storeRecords), "avro", "discard", nil, c.env)
			logf("stores %s round %d: %.0f records/s %s", c.name, r, res.Rate, res.Err)
			if res.Err != "" {
				errs[i] = append(errs[i], res.Err)
				continue
			}
			rates[i] = append(rates[i], res.Rate)
		}
	}
	none := medianOf(rates[0])
	for i, c := range cases {
		med := medianOf(rates[i])
		ratio := "-"
		if none > 0 {
			ratio = fmt.Sprintf("%.2f", med/none)
		}
		runs := fmt.Sprint(len(rates[i]))
		if len(errs[i]) > 0 {
			runs += " (failed: " + strings.Join(errs[i], "; ") + ")"
		}
		fmt.Fprintf(&md, "| `%s` | %.0f | %s | %s |\n", c.name, med, runs, ratio)
	}
	out.LoadEnd = loadavg()
	writeOut()
	fmt.Println(md.String())
	return os.WriteFile(*outMD, []byte(md.String()), 0o644)
}

func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
