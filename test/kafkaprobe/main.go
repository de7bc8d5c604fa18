// Command kafkaprobe creates topics, produces records and reads a consumer
// group's progress on a local broker (PLAINTEXT, no authentication):
// scripts/kafka/topic.sh and produce.sh run it against scripts/kafka's
// Kafka, scripts/image/test.sh against kfake.
//
//	kafkaprobe topic     -brokers B -topic T [-partitions P] [-dlq=false]
//	                     creates T and its dead-letter topic T.dlq (exist: fine)
//	kafkaprobe produce   -brokers B -topic T [-n N]
//	                     N sample JSON records ({"id":i,"name":"record i"},
//	                     keys key-0..key-9); with -n 0, one record per line
//	                     of stdin (key<TAB>value, or a value alone)
//	kafkaprobe committed -brokers B -group G -topic T -want N [-timeout D]
//	                     waits until G's committed offsets on T add up to N
//	kafkaprobe members   -brokers B -group G
//	                     prints the group's state and member count
//
// Exit 0 on success, 1 otherwise (with the reason on stderr).
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kafkaprobe topic|produce|committed|members [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	brokers := fs.String("brokers", "127.0.0.1:19092", "bootstrap broker(s), comma-separated")
	topic := fs.String("topic", "", "topic")
	group := fs.String("group", "", "consumer group")
	partitions := fs.Int("partitions", 3, "partitions of a topic created (topic, and produce to a missing topic)")
	dlq := fs.Bool("dlq", true, "topic: create the dead-letter topic <topic>.dlq too")
	n := fs.Int("n", 10, "produce: sample records; 0 reads records from stdin, one per line")
	want := fs.Int64("want", 0, "committed: offsets to wait for, summed over the topic's partitions")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for the broker (committed: for the offsets)")
	_ = fs.Parse(os.Args[2:])

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(splitComma(*brokers)...), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		fail(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	need := func(name, v string) {
		if v == "" {
			fail(fmt.Errorf("%s: -%s is required", os.Args[1], name))
		}
	}
	switch os.Args[1] {
	case "topic":
		need("topic", *topic)
		err = createTopics(ctx, adm, *topic, int32(*partitions), *dlq)
	case "produce":
		need("topic", *topic)
		err = produce(ctx, cl, *topic, *n, os.Stdin)
	case "committed":
		need("topic", *topic)
		need("group", *group)
		err = committed(ctx, adm, *group, *topic, *want)
	case "members":
		need("group", *group)
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

func splitComma(s string) []string {
	var out []string
	for _, f := range bytes.Split([]byte(s), []byte(",")) {
		if len(f) > 0 {
			out = append(out, string(f))
		}
	}
	return out
}

// createTopics creates topic (and topic.dlq) with the broker's default
// replication factor; a topic that exists already is left as it is.
func createTopics(ctx context.Context, adm *kadm.Client, topic string, partitions int32, dlq bool) error {
	names := []string{topic}
	if dlq {
		names = append(names, topic+".dlq")
	}
	resps, err := adm.CreateTopics(ctx, partitions, -1, nil, names...)
	if err != nil {
		return err
	}
	for _, name := range names {
		r := resps[name]
		switch {
		case r.Err == nil:
			fmt.Printf("created %s (%d partitions)\n", name, partitions)
		case errors.Is(r.Err, kerr.TopicAlreadyExists):
			fmt.Printf("%s exists already\n", name)
		default:
			return fmt.Errorf("creating %s: %w", name, r.Err)
		}
	}
	return nil
}

func produce(ctx context.Context, cl *kgo.Client, topic string, n int, stdin io.Reader) error {
	var recs []*kgo.Record
	if n > 0 {
		for i := range n {
			recs = append(recs, &kgo.Record{
				Topic: topic,
				Key:   fmt.Appendf(nil, "key-%d", i%10),
				Value: fmt.Appendf(nil, `{"id":%d,"name":"record %d"}`, i, i),
			})
		}
	} else {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
		for sc.Scan() {
			line := bytes.Clone(sc.Bytes())
			r := &kgo.Record{Topic: topic, Value: line}
			if k, v, ok := bytes.Cut(line, []byte("\t")); ok {
				r.Key, r.Value = k, v
			}
			recs = append(recs, r)
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("producing to %s: %w", topic, err)
	}
	fmt.Printf("produced %d records to %s\n", len(recs), topic)
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
