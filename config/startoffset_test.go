package config

import (
	"strings"
	"testing"
	"time"
)

// TestStartOffsetTime checks that KAFKA_START_OFFSET takes an RFC 3339
// time besides earliest and latest, and refuses anything else.
func TestStartOffsetTime(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        StartOffset
		wantTime    string // RFC 3339, "" when not a time
		wantErr     bool
	}{
		{name: "earliest in upper case", value: "EARLIEST", want: StartEarliest},
		{name: "latest", value: "latest", want: StartLatest},
		{name: "a time in UTC", value: "2026-11-22T11:30:00Z", want: "2026-11-22T11:30:00Z", wantTime: "2026-11-22T11:30:00Z"},
		{name: "a time with an offset and fractions", value: "2026-11-22T12:30:00.5+01:00", want: "2026-11-22T12:30:00.5+01:00", wantTime: "2026-11-22T11:30:00.5Z"},
		{name: "a date alone", value: "2026-11-22", wantErr: true},
		{name: "a word", value: "beginning", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(lookup(env("KAFKA_START_OFFSET", tc.value)))
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "KAFKA_START_OFFSET") || !strings.Contains(err.Error(), "RFC 3339") {
					t.Fatalf("got %v, want a problem naming KAFKA_START_OFFSET and RFC 3339", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Kafka.StartOffset != tc.want {
				t.Errorf("got %q, want %q", c.Kafka.StartOffset, tc.want)
			}
			at, ok := c.Kafka.StartOffset.Time()
			if got := ""; ok {
				got = at.UTC().Format(time.RFC3339Nano)
				if got != tc.wantTime {
					t.Errorf("got time %s, want %s", got, tc.wantTime)
				}
			} else if tc.wantTime != "" {
				t.Errorf("got no time, want %s", tc.wantTime)
			}
		})
	}
}
