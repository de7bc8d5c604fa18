// Command kafkaprobe is the broker side of scripts/image/test.sh: it
// creates a topic and its dead-letter topic and produces records into it,
// then follows what the container under test did to its consumer group.
//
//	kafkaprobe produce   -brokers B -topic T -n N      topic T and T.dlq, N JSON records
//	kafkaprobe committed -brokers B -group G -topic T -want N -timeout D
//	                     until G's committed offsets on T add up to N
//	kafkaprobe members   -brokers B -group G           prints the group's state and member count
//
// Exit 0 on success, 1 otherwise (with the reason on stderr).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kafkaprobe produce|committed|members [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	brokers := fs.String("brokers", "127.0.0.1:39492", "bootstrap broker")
	topic := fs.String("topic", "image-test", "topic")
	group := fs.String("group", "image-test", "consumer group")
	partitions := fs.Int("partitions", 3, "partitions of a topic produce creates")
	n := fs.Int("n", 100, "records to produce")
	want := fs.Int64("want", 100, "committed offsets to wait for, summed over the topic's partitions")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait")
	_ = fs.Parse(os.Args[2:])

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(*brokers), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		fail(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	switch os.Args[1] {
	case "produce":
		err = produce(ctx, cl, adm, *topic, int32(*partitions), *n)
	case "committed":
		err = committed(ctx, adm, *group, *topic, *want)
	case "members":
		err = members(ctx, adm, *group)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kafkaprobe:", err)
	os.Exit(1)
}

func produce(ctx context.Context, cl *kgo.Client, adm *kadm.Client, topic string, partitions int32, n int) error {
	for _, t := range []string{topic, topic + ".dlq"} {
		if _, err := adm.CreateTopic(ctx, partitions, 1, nil, t); err != nil {
			return fmt.Errorf("creating %s: %w", t, err)
		}
	}
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{
			Topic: topic,
			Key:   fmt.Appendf(nil, "key-%d", i%10),
			Value: fmt.Appendf(nil, `{"id":%d,"name":"record %d"}`, i, i),
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("producing: %w", err)
	}
	fmt.Printf("produced %d records to %s (%d partitions)\n", n, topic, partitions)
	return nil
}

func committed(ctx context.Context, adm *kadm.Client, group, topic string, want int64) error {
	var sum int64
	for {
		offs, err := adm.FetchOffsetsForTopics(ctx, group, topic)
		if err == nil {
			sum = 0
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Err == nil && o.At > 0 {
					sum += o.At
				}
			})
			if sum == want {
				fmt.Printf("group %s committed %d offsets on %s\n", group, sum, topic)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("group %s: %d offsets committed on %s, want %d (last error: %v)", group, sum, topic, want, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func members(ctx context.Context, adm *kadm.Client, group string) error {
	groups, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return err
	}
	g, ok := groups[group]
	if !ok {
		return errors.New("group not described")
	}
	if g.Err != nil {
		return g.Err
	}
	fmt.Printf("%s %d\n", g.State, len(g.Members))
	return nil
}
