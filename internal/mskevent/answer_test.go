package mskevent

import (
	"slices"
	"strings"
	"testing"

	"github.com/msk-consumer/msk-consumer/handler"
)

func TestParseAnswer(t *testing.T) {
	var recs []handler.Record
	for _, off := range []int64{40, 41, 42, 43} {
		recs = append(recs, rawRecord(off, nil, []byte("v")))
	}
	for _, tc := range []struct {
		payload string
		want    []int64
		invalid string // a part of the reason; empty: valid
	}{
		{"", nil, ""},
		{"null", nil, ""},
		{"{}", nil, ""},
		{`"done"`, nil, ""},
		{`{"batchItemFailures":[]}`, nil, ""},
		{`{"batchItemFailures":[{"itemIdentifier":{"partition":"AWSKafkaTopic-0","offset":42}},{"itemIdentifier":{"partition":"AWSKafkaTopic-0","offset":40}}]}`, []int64{40, 42}, ""},
		{`{"batchItemFailures":[{"itemIdentifier":"43"},{"itemIdentifier":"43"}]}`, []int64{43}, ""},
		{`{"batchItemFailures":[{"itemIdentifier":{"partition":"AWSKafkaTopic-0","offset":"41"}}]}`, []int64{41}, ""},
		{`not json`, nil, "not JSON"},
		{`{"batchItemFailures":{}}`, nil, "not an array"},
		{`{"batchItemFailures":[{}]}`, nil, "is missing"},
		{`{"batchItemFailures":[{"itemIdentifier":{"partition":"other-0","offset":42}}]}`, nil, `names partition "other-0"`},
		{`{"batchItemFailures":[{"itemIdentifier":{"partition":"AWSKafkaTopic-0"}}]}`, nil, "lacks"},
		{`{"batchItemFailures":[{"itemIdentifier":{"partition":"AWSKafkaTopic-0","offset":99}}]}`, nil, "99 is not an offset of this batch"},
		{`{"batchItemFailures":[{"itemIdentifier":"-1"}]}`, nil, "not a decimal offset"},
		{`{"batchItemFailures":[{"itemIdentifier":42}]}`, nil, "neither a string nor an object"},
		{`{"batchItemFailures":[{"itemIdentifier":{"partition":"AWSKafkaTopic-0","offset":4.2}}]}`, nil, "not a decimal offset"},
	} {
		got, invalid := ParseAnswer("AWSKafkaTopic", 0, recs, []byte(tc.payload))
		if tc.invalid == "" && invalid != "" || tc.invalid != "" && !strings.Contains(invalid, tc.invalid) {
			t.Errorf("%s: invalid %q, want %q", tc.payload, invalid, tc.invalid)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: offsets %v, want %v", tc.payload, got, tc.want)
		}
	}
}

func TestFunctionError(t *testing.T) {
	e := ParseFunctionError("orders-fn", "Unhandled", []byte(`{"errorMessage":"bad record\n42","errorType":"ValueError","stackTrace":["a"]}`))
	if got, want := e.Error(), "lambda function orders-fn: function error (Unhandled): ValueError: bad record 42"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	e = ParseFunctionError("f", "Unhandled", []byte("Task timed out after 3.00 seconds"))
	if got, want := e.Error(), "lambda function f: function error (Unhandled): Task timed out after 3.00 seconds"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
