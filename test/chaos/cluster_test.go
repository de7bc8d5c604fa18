package main

import (
	"strings"
	"testing"
	"time"
)

// TestFaultReportStalls checks the stall of a partition during a fault: the
// longest gap between two successful deliveries that overlaps the window,
// including the gap that straddles its start, and the open gap of a
// partition that delivered nothing after the fault began.
func TestFaultReportStalls(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	w := faultWindow{name: "kill", broker: 2, start: at(10), back: at(20), synced: at(25)}
	ok := map[int32][]time.Time{
		0: {at(1), at(9), at(17), at(18), at(30), at(31)}, // 9→17 straddles the start: 8s; 18→30 starts inside: 12s
		1: {at(1), at(2), at(3), at(40)},                  // 3→40: 37s
		2: {at(9.5), at(10.5), at(11)},                    // 9.5→10.5 straddles the start: 1s
		3: {at(26), at(27), at(35)},                       // before the window ends? 26 > synced: 27→35 not counted
	}
	r := w.report(t0, ok, at(50))
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"at", r.AtS, 10},
		{"down", r.DownS, 10},
		{"synced", r.SyncedS, 15},
		{"partition 0", r.MaxStallS[0], 12},
		{"partition 1", r.MaxStallS[1], 37},
		{"partition 2", r.MaxStallS[2], 1},
		{"partition 3", r.MaxStallS[3], 0},
		{"worst", r.WorstS, 37},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if len(r.Open) != 0 {
		t.Errorf("open partitions: got %v, want none", r.Open)
	}

	r = faultWindow{start: at(20), back: at(21), synced: at(22)}.report(t0, ok, at(50))
	if len(r.Open) != 1 || r.Open[0] != 2 || r.MaxStallS[2] != 39 {
		t.Errorf("got open %v with stall %v, want partition 2 open for 39s (last delivery at 11s, end at 50s)", r.Open, r.MaxStallS[2])
	}
}

func TestStallTable(t *testing.T) {
	got := stallTable([]faultReport{{Fault: "kill", Broker: 1, AtS: 12, DownS: 9.5, SyncedS: 11, MaxStallS: map[int32]float64{0: 1.25, 1: 7}, WorstS: 7, Duplicates: 3}}, 2)
	want := "| fault | broker | at | broker back after | fully replicated after | p0 | p1 | longest | duplicates |\n" +
		"| --- | --: | --: | --: | --: | --: | --: | --: | --: |\n" +
		"| kill | 1 | +12s | 9.5s | 11.0s | 1.2 | 7.0 | **7.0s** | 3 |\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(got, "p1") {
		t.Error("no column for p1")
	}
}
