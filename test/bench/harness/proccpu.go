package main

// CPU time by process group, from /proc: what the Lambda section reports
// per run, so that a run bound by this machine's CPU says who spent it (the
// harness, which runs the service and the proxy; the emulators; the
// functions; kfake).

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture the service is built for.
const clockTicks = 100

// procGroups are the process groups by the command name in
// /proc/<pid>/stat (at most 15 bytes); every other process is "other".
var procGroups = map[string]string{
	"harness":        "harness",
	"aws-lambda-rie": "emulators",
	"lambda-gofn":    "functions",
	"kfake":          "kfake",
}

// CPUTimes are CPU seconds (user + system) by group, and the machine's busy
// and total CPU seconds from /proc/stat.
type CPUTimes struct {
	Groups      map[string]float64
	Busy, Total float64
}

// readCPUTimes reads the CPU seconds every live process has used so far,
// summed by group, and the machine's counters. A process that exits
// between two readings takes its time with it: the groups here live for
// the whole section.
func readCPUTimes() CPUTimes {
	t := CPUTimes{Groups: map[string]float64{}}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		group, ok := procGroups[s[open+1:closing]]
		if !ok {
			group = "other"
		}
		// After the command: state is field 3; utime and stime are
		// fields 14 and 15.
		f := strings.Fields(s[closing+1:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		t.Groups[group] += (u + st) / clockTicks
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i, v := range f[1:] {
			n, _ := strconv.ParseFloat(v, 64)
			t.Total += n / clockTicks
			if i != 3 && i != 4 { // idle, iowait
				t.Busy += n / clockTicks
			}
		}
	}
	return t
}

// sub returns the CPU seconds spent from before to t.
func (t CPUTimes) sub(before CPUTimes) CPUTimes {
	d := CPUTimes{Groups: map[string]float64{}, Busy: t.Busy - before.Busy, Total: t.Total - before.Total}
	for g, v := range t.Groups {
		d.Groups[g] = v - before.Groups[g]
	}
	return d
}
