// Command ceiling is the benchmark's ceiling: a bare franz-go group consumer
// that polls and counts records, decodes nothing, and commits once at the
// end. It prints one JSON line: the count and the wall-clock times of the
// first and the last record (Unix nanoseconds).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:39092", "bootstrap brokers")
	topic := flag.String("topic", "", "topic to consume")
	group := flag.String("group", "", "consumer group (use a fresh one per run)")
	n := flag.Int64("n", 0, "stop after this many records")
	flag.Parse()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.ConsumerGroup(*group),
		kgo.ConsumeTopics(*topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var count int64
	var first, last time.Time
	for count < *n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 && first.IsZero() {
				first = time.Now()
			}
			count += int64(len(p.Records))
		})
	}
	last = time.Now()
	if err := cl.CommitUncommittedOffsets(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling: commit:", err)
	}
	cl.Close()
	_ = json.NewEncoder(os.Stdout).Encode(map[string]int64{
		"count": count, "first_ns": first.UnixNano(), "last_ns": last.UnixNano(), "hwm_kb": vmHWM(),
	})
}

// vmHWM is this process's peak resident set in kB.
func vmHWM() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}
