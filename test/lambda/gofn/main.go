// Command gofn is a Lambda function written against aws-lambda-go's
// events.KafkaEvent, run by make test-lambda in AWS's Lambda runtime
// interface emulator: it decodes each record as the Go runtime does,
// reports the records whose value starts with FAIL in batchItemFailures,
// fails (returns an error) on a value that starts with RAISE, and writes
// every other record, as decoded, to FN_OUT. FN_SLEEP (a Go duration)
// makes each invocation take that long first, as a function doing its own
// work would (the Lambda section of make bench); without FN_OUT it writes
// nothing.
//
// FN_MODE=count (the Lambda section of make bench) is a function that does
// no work of its own besides FN_SLEEP: it takes the event as bytes (no
// events.KafkaEvent decoding, which on the bench's machine would compete
// for the CPU with the service under test, where Lambda runs functions on
// its own fleet), counts its records (the occurrences of "offset": in the
// payload: the event's keys and values are base64, so only a header named
// offset could add one) and answers {"batchItemFailures":[],"records":N},
// so that the bench checks the functions received every record.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

type itemIdentifier struct {
	Partition string `json:"partition"`
	Offset    int64  `json:"offset"`
}

type failure struct {
	ItemIdentifier itemIdentifier `json:"itemIdentifier"`
}

type response struct {
	BatchItemFailures []failure `json:"batchItemFailures"`
}

type handled struct {
	Offset      int64             `json:"offset"`
	Key         string            `json:"key"`
	Value       string            `json:"value"`
	Headers     map[string][]byte `json:"headers"`
	EventSource string            `json:"eventSource"`
	Timestamp   int64             `json:"timestamp"`
}

// sleep is FN_SLEEP, read once.
var sleep, _ = time.ParseDuration(os.Getenv("FN_SLEEP"))

func handle(_ context.Context, ev events.KafkaEvent) (response, error) {
	time.Sleep(sleep)
	var resp response
	var seen []handled
	for tp, recs := range ev.Records {
		for _, r := range recs {
			v, err := base64.StdEncoding.DecodeString(r.Value)
			if err != nil {
				return resp, fmt.Errorf("offset %d: value is not base64: %w", r.Offset, err)
			}
			switch {
			case strings.HasPrefix(string(v), "RAISE"):
				return resp, fmt.Errorf("cannot handle %s at offset %d", v, r.Offset)
			case strings.HasPrefix(string(v), "FAIL"):
				resp.BatchItemFailures = append(resp.BatchItemFailures, failure{itemIdentifier{tp, r.Offset}})
				continue
			}
			k, _ := base64.StdEncoding.DecodeString(r.Key)
			h := map[string][]byte{}
			for _, m := range r.Headers {
				for name, b := range m {
					h[name] = b
				}
			}
			seen = append(seen, handled{r.Offset, string(k), string(v), h, ev.EventSource, r.Timestamp.UnixMilli()})
		}
	}
	if os.Getenv("FN_OUT") == "" {
		return resp, nil
	}
	f, err := os.OpenFile(os.Getenv("FN_OUT"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return resp, err
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, s := range seen {
		if err := enc.Encode(s); err != nil {
			return resp, err
		}
	}
	return resp, nil
}

// counter is FN_MODE=count's function.
type counter struct{}

var offsetField = []byte(`"offset":`)

func (counter) Invoke(_ context.Context, payload []byte) ([]byte, error) {
	time.Sleep(sleep)
	n := bytes.Count(payload, offsetField)
	return append(strconv.AppendInt([]byte(`{"batchItemFailures":[],"records":`), int64(n), 10), '}'), nil
}

func main() {
	if os.Getenv("FN_MODE") == "count" {
		lambda.StartHandler(counter{})
		return
	}
	lambda.Start(handle)
}
