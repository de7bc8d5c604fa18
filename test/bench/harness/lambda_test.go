package main

import (
	"strings"
	"testing"
)

// TestLambdaGoals: a goal row for key order on the emulators and one for
// the fleet stand-in, each against the partition order of its own kind;
// none for the throttled runs.
func TestLambdaGoals(t *testing.T) {
	defer func(saved []LambdaResult) { lambdaResults = saved }(lambdaResults)
	p := *partitions
	lambdaResults = []LambdaResult{
		{Name: "partition order", Function: "emulators", Order: "partition", Lanes: 1, Pool: 8, Rate: 25_000},
		{Name: "key order", Function: "emulators", Order: "key", Lanes: 8, Pool: p * 8, Rate: 62_500},
		{Name: "key order, throttled", Function: "emulators", Order: "key", Lanes: 8, Pool: 8, Rate: 20_000},
		{Name: "partition order, fleet stand-in", Function: "stand-in", Order: "partition", Lanes: 1, Pool: 8, Rate: 28_000},
		{Name: "key order, fleet stand-in", Function: "stand-in", Order: "key", Lanes: 8, Pool: p * 8, Rate: 168_000},
	}
	got := lambdaGoals(partitionRates())
	want := "\n| goal | measured | met |\n| --- | ---: | --- |\n" +
		"| key/8 ≥ 5× partition order (emulators) | 2.50× | false |\n" +
		"| key/8 ≥ 5× partition order (fleet stand-in: no function on this machine) | 6.00× | true |\n"
	if got != want {
		t.Errorf("goals:\n%s\nwant:\n%s", got, want)
	}
	md := lambdaMarkdown()
	for _, row := range []string{"| key order, fleet stand-in | key | 8 | ", "| 6.00× |\n"} {
		if !strings.Contains(md, row) {
			t.Errorf("the section lacks %q:\n%s", row, md)
		}
	}
}
