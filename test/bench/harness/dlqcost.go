package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

var dlqRecords = flag.Int("dlq-records", 1_000_000, "records of each dead-letter cost topic: enough that key/32's last partial batches (6 × 32 × 500 records, waiting BATCH_MAX_WAIT) are a tenth of them")

// What 1% undecodable records cost (issue 14, item 4): make bench's case
// 3 (1 KB Avro, decoded, the discard handler, bin/consumer) on a clean
// topic against one where every hundredth record is undecodable and
// dead-lettered (acks=all), in partition order (the default) and in key
// order with 32 lanes; rounds interleaved, the median of three.
func dlqOnly(ctx context.Context, adm *kadm.Client) error {
	topics := map[string]int{prefix + "-dlqcost-clean": 0, prefix + "-dlqcost-1pct": 100}
	for t, bad := range topics {
		if err := createTopics(ctx, adm, t); err != nil {
			return err
		}
		if _, err := preload(ctx, t, *dlqRecords, 1024, bad); err != nil {
			return err
		}
	}
	type dcase struct {
		name, topic string
		env         []string
	}
	var cases []dcase
	for _, order := range []struct{ name, env string }{{"partition", "PROCESSING_ORDER=partition"}, {"key/32", "PROCESSING_ORDER=key"}} {
		env := []string{order.env, "PARTITION_CONCURRENCY=32"}
		cases = append(cases,
			dcase{order.name + ", no DLQ", prefix + "-dlqcost-clean", env},
			dcase{order.name + ", 1% to the DLQ", prefix + "-dlqcost-1pct", env})
	}
	rates := make([][]float64, len(cases))
	for r := 1; r <= *storeRounds; r++ {
		for i, c := range cases {
			res := service(c.topic, int64(*dlqRecords), "avro", "discard", nil, c.env)
			logf("dlq %s round %d: %.0f records/s %s", c.name, r, res.Rate, res.Err)
			if res.Err == "" {
				rates[i] = append(rates[i], res.Rate)
			}
		}
	}
	var md strings.Builder
	fmt.Fprintf(&md, "Command: `%s`  \nMachine: %s  \nDate: %s; load average at start %s  \nBroker: %s\n\n",
		out.Command, out.Machine, out.Date, out.Load, out.Broker)
	md.WriteString("| case | records/s (median) | rounds | against no DLQ |\n| --- | ---: | --- | ---: |\n")
	for i, c := range cases {
		med := medianOf(rates[i])
		ratio := "1"
		if i%2 == 1 {
			if base := medianOf(rates[i-1]); base > 0 {
				ratio = fmt.Sprintf("%.2f", med/base)
			}
		}
		rounds := make([]string, len(rates[i]))
		for j, r := range rates[i] {
			rounds[j] = fmt.Sprintf("%.0f", r)
		}
		fmt.Fprintf(&md, "| %s | %.0f | %s | %s |\n", c.name, med, strings.Join(rounds, " / "), ratio)
	}
	out.LoadEnd = loadavg()
	writeOut()
	fmt.Println(md.String())
	return os.WriteFile(*outMD, []byte(md.String()), 0o644)
}
