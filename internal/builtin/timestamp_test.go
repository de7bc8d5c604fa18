package builtin

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestAppendRFC3339Millis(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cases := []time.Time{
		time.UnixMilli(0), time.UnixMilli(-1), time.UnixMilli(1_795_000_000_123),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 12, 0, 0, 5e5, time.FixedZone("x", 3600)),
	}
	for range 10000 {
		cases = append(cases, time.UnixMilli(rng.Int64N(400_000_000_000_000)-100_000_000_000_000).Add(time.Duration(rng.IntN(1e6))))
	}
	for _, tt := range cases {
		want := tt.UTC().AppendFormat(nil, "2006-01-02T15:04:05.000Z")
		if got := appendRFC3339Millis(nil, tt); string(got) != string(want) {
			t.Fatalf("%v: got %s, want %s", tt, got, want)
		}
	}
}
