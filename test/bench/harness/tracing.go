package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Tracing's cost (issue 15): make bench's case 3 (the service on 1 KB Avro
// records, decoded, the discard handler) with OTEL_TRACES_EXPORTER=none
// against otlp at 100% sampling to a receiver that answers every export
// with an empty success and discards it, rounds interleaved.
func tracingOnly(ctx context.Context, adm *kadm.Client) error {
	topic := prefix + "-tracing"
	if err := createTopics(ctx, adm, topic); err != nil {
		return err
	}
	if _, err := preload(ctx, topic, *storeRecords, 1024, 0); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var spansBytes atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		spansBytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})}
	go srv.Serve(ln) //nolint:errcheck // closed below
	defer srv.Close()
	cases := []storeCase{
		{name: "off (OTEL_TRACES_EXPORTER=none)"},
		{name: "on, 100% sampled (otlp, http/protobuf)", env: []string{
			"OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT=http://" + ln.Addr().String(),
			"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_TRACES_SAMPLER=always_on",
		}},
	}
	var md strings.Builder
	fmt.Fprintf(&md, "Command: `%s`  \nMachine: %s  \nDate: %s; load average at start %s  \nBroker: %s\n\n",
		out.Command, out.Machine, out.Date, out.Load, out.Broker)
	md.WriteString("| tracing | records/s (median) | rounds | against off |\n| --- | ---: | --- | ---: |\n")
	rates := make([][]float64, len(cases))
	for r := 1; r <= *storeRounds; r++ {
		for i, c := range cases {
			res := service(topic, int64(*storeRecords), "avro", "discard", nil, c.env)
			logf("tracing %s round %d: %.0f records/s %s", c.name, r, res.Rate, res.Err)
			if res.Err == "" {
				rates[i] = append(rates[i], res.Rate)
			}
		}
	}
	off := medianOf(rates[0])
	for i, c := range cases {
		med := medianOf(rates[i])
		ratio := "-"
		if off > 0 {
			ratio = fmt.Sprintf("%.2f", med/off)
		}
		rounds := make([]string, len(rates[i]))
		for j, r := range rates[i] {
			rounds[j] = fmt.Sprintf("%.0f", r)
		}
		fmt.Fprintf(&md, "| %s | %.0f | %s | %s |\n", c.name, med, strings.Join(rounds, " / "), ratio)
	}
	fmt.Fprintf(&md, "\nThe receiver got %d bytes of spans in all.\n", spansBytes.Load())
	out.LoadEnd = loadavg()
	writeOut()
	fmt.Println(md.String())
	return os.WriteFile(*outMD, []byte(md.String()), 0o644)
}
