package main

import (
	"context"

	"flag"
	"fmt"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"os"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// The idempotency stores' cost (issue 13): the service on one preloaded
// topic of 1 KB Avro records with the discard handler, once per store,
// each run a fresh group (and so fresh keys): records/s with
// IDEMPOTENCY_STORE=none against redis (scripts/redis/up.sh) and dynamodb
// on moto (scripts/moto/up.sh), both started by scripts/bench.sh for
// -only stores. moto serves one request at a time, so its figure is the
// emulator's, not DynamoDB's (docs/BENCHMARKS.md); it runs on fewer
// records.
var (
	storeRecords = flag.Int("store-records", 200000, "records of the idempotency stores' topic")
	storeRounds  = flag.Int("store-rounds", 3, "runs per store; the median is reported")
	redisURL     = flag.String("redis-url", "redis://127.0.0.1:16379/0", "REDIS_URL of the redis case")
	dynamoURL    = flag.String("dynamodb-endpoint", "http://127.0.0.1:18000", "AWS_ENDPOINT_URL_DYNAMODB of the dynamodb case (moto); empty: no dynamodb case")
	dynamoRecs   = flag.Int("store-records-dynamodb", 6000, "records of the dynamodb case (moto runs about a thousand requests a second)")
)

type storeCase struct {
	name    string
	env     []string
	records int // 0: -store-records
}

// dynamoTable creates a table like deploy/dynamodb/table.json on moto.
func dynamoTable(ctx context.Context) (string, error) {
	table := fmt.Sprintf("%s-idempotency", prefix)
	cl := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(*dynamoURL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	_, err := cl.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	})
	return table, err
}

func storesOnly(ctx context.Context, adm *kadm.Client) error {
	topic := prefix + "-stores"
	if err := createTopics(ctx, adm, topic); err != nil {
		return err
	}
	if _, err := preload(ctx, topic, *storeRecords, 1024, 0); err != nil {
		return err
	}
	cases := []storeCase{
		{name: "none"},
		{name: "redis", env: []string{"IDEMPOTENCY_STORE=redis", "REDIS_URL=" + *redisURL}},
	}
	if *dynamoURL != "" {
		table, err := dynamoTable(ctx)
		if err != nil {
			return fmt.Errorf("dynamodb table on %s: %w", *dynamoURL, err)
		}
		cases = append(cases, storeCase{name: "dynamodb (moto)", records: *dynamoRecs, env: []string{
			"IDEMPOTENCY_STORE=dynamodb", "IDEMPOTENCY_TABLE=" + table, "AWS_REGION=us-east-1",
			"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true",
			"AWS_ENDPOINT_URL_DYNAMODB=" + *dynamoURL,
		}})
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
			n := *storeRecords
			if c.records > 0 {
				n = c.records
			}
			res := service(topic, int64(n), "avro", "discard", nil, append(c.env, "KAFKA_START_OFFSET=earliest"))
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
