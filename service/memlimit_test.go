package service

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const mi = 1 << 20

func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name          string
		budget, group int64
		want          int64
		why           string
	}{
		{"no container limit, 16 MiB", 16 * mi, 0, 64 * mi, "2.5 × MAX_BUFFERED_BYTES"},
		{"no container limit, 64 MiB", 64 * mi, 0, 184 * mi, "2.5 × MAX_BUFFERED_BYTES"},
		{"roomy container", 64 * mi, 1024 * mi, 184 * mi, "2.5 × MAX_BUFFERED_BYTES"},
		{"container just above the figure", 16 * mi, 64*mi*10/9 + 2, 64 * mi, "2.5 × MAX_BUFFERED_BYTES"},
		{"container just below the figure", 16 * mi, 64*mi*10/9 - 2, 64 * mi, "90% of the container"},
		{"tight container", 64 * mi, 128 * mi, 128 * mi * 9 / 10, "90% of the container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := memoryLimit(tc.budget, tc.group)
			if d := got - tc.want; d < -4 || d > 4 { // float rounding
				t.Errorf("memoryLimit(%d, %d) = %d, want %d", tc.budget, tc.group, got, tc.want)
			}
			if !strings.HasPrefix(why, tc.why) {
				t.Errorf("reason %q, want it to start with %q", why, tc.why)
			}
		})
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	const v1Unlimited = "9223372036854771712\n"
	for _, tc := range []struct {
		name string
		fs   fstest.MapFS
		want int64
		from string
	}{
		{"nothing mounted", fstest.MapFS{}, 0, ""},
		{"v2 root, no limit", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("max\n"),
		}, 0, ""},
		{"v2 root (container namespace)", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("536870912\n"),
		}, 512 * mi, "/sys/fs/cgroup/memory.max"},
		{"v2 without proc", fstest.MapFS{
			"sys/fs/cgroup/memory.max": file("268435456\n"),
		}, 256 * mi, "/sys/fs/cgroup/memory.max"},
		{"v2 nested, the parent is tighter", fstest.MapFS{
			"proc/self/cgroup":                           file("0::/kubepods/pod1/ctr\n"),
			"sys/fs/cgroup/memory.max":                   file("max\n"),
			"sys/fs/cgroup/kubepods/memory.max":          file("max\n"),
			"sys/fs/cgroup/kubepods/pod1/memory.max":     file("300000000\n"),
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": file("400000000\n"),
		}, 300000000, "/sys/fs/cgroup/kubepods/pod1/memory.max"},
		{"v2 nested, own limit", fstest.MapFS{
			"proc/self/cgroup":                           file("0::/kubepods/pod1/ctr\n"),
			"sys/fs/cgroup/kubepods/pod1/memory.max":     file("max\n"),
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": file("200000000\n"),
		}, 200000000, "/sys/fs/cgroup/kubepods/pod1/ctr/memory.max"},
		{"v1 unlimited", fstest.MapFS{
			"proc/self/cgroup":                           file("4:memory:/\n0::/\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file(v1Unlimited),
		}, 0, ""},
		{"v1 root (docker)", fstest.MapFS{
			"proc/self/cgroup":                           file("12:memory:/docker/abc\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("1073741824\n"),
		}, 1024 * mi, "/sys/fs/cgroup/memory/memory.limit_in_bytes"},
		{"v1 nested, with other controllers on the line", fstest.MapFS{
			"proc/self/cgroup":                                            file("9:name=systemd:/\n4:cpuacct,memory:/process_api/92d6\n1:cpu:/\n0::/\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes":                  file(v1Unlimited),
			"sys/fs/cgroup/memory/process_api/memory.limit_in_bytes":      file(v1Unlimited),
			"sys/fs/cgroup/memory/process_api/92d6/memory.limit_in_bytes": file("734003200\n"),
		}, 700 * mi, "/sys/fs/cgroup/memory/process_api/92d6/memory.limit_in_bytes"},
		{"hybrid: v2 without memory, v1 limit", fstest.MapFS{
			"proc/self/cgroup":                           file("4:memory:/\n0::/\n"),
			"sys/fs/cgroup/unified/cgroup.controllers":   file(""),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("104857600\n"),
		}, 100 * mi, "/sys/fs/cgroup/memory/memory.limit_in_bytes"},
		{"garbage and zero are no limit", fstest.MapFS{
			"proc/self/cgroup":                           file("not a cgroup line\n"),
			"sys/fs/cgroup/memory.max":                   file("lots\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("0\n"),
		}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, from := cgroupMemoryLimit(tc.fs)
			if got != tc.want || from != tc.from {
				t.Errorf("cgroupMemoryLimit = %d from %q, want %d from %q", got, from, tc.want, tc.from)
			}
		})
	}
}

func TestApplyMemoryLimit(t *testing.T) {
	cgroup := fstest.MapFS{
		"proc/self/cgroup":         &fstest.MapFile{Data: []byte("0::/\n")},
		"sys/fs/cgroup/memory.max": &fstest.MapFile{Data: []byte("73400320\n")}, // 70 MiB
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		fs      fstest.MapFS
		want    int64 // -1: not set
		logHas  string
		logNone string
	}{
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "300MiB"}, cgroup, -1, "GOMEMLIMIT is set", "limit_bytes"},
		{"GOMEMLIMIT=off is set too", map[string]string{"GOMEMLIMIT": "off"}, cgroup, -1, "GOMEMLIMIT is set", "limit_bytes"},
		{"from the budget", nil, fstest.MapFS{}, 64 * mi, "2.5 × MAX_BUFFERED_BYTES", "container_memory_file"},
		{"empty GOMEMLIMIT is unset", map[string]string{"GOMEMLIMIT": ""}, fstest.MapFS{}, 64 * mi, "2.5 × MAX_BUFFERED_BYTES", "GOMEMLIMIT is set"},
		{"from the container", nil, cgroup, 63 * mi, "90% of the container", "GOMEMLIMIT is set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.InfoLevel)
			var calls []int64
			set := func(n int64) int64 { calls = append(calls, n); return 0 }
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			got := applyMemoryLimit(16*mi, lookup, tc.fs, set, zap.New(core))
			if d := got - tc.want; d < -4 || d > 4 { // float rounding
				t.Errorf("limit %d, want %d", got, tc.want)
			}
			switch {
			case tc.want < 0 && len(calls) != 0:
				t.Errorf("the runtime's limit was set (%v) although GOMEMLIMIT is", calls)
			case tc.want >= 0 && (len(calls) != 1 || calls[0] != got):
				t.Errorf("set calls %v, want one with %d", calls, got)
			}
			entries := logs.AllUntimed()
			if len(entries) != 1 {
				t.Fatalf("%d log lines, want 1: %v", len(entries), entries)
			}
			e := entries[0]
			var line strings.Builder
			line.WriteString(e.Message)
			for k, v := range e.ContextMap() {
				fmt.Fprintf(&line, " %s=%v", k, v)
			}
			if e.Level != zapcore.InfoLevel {
				t.Errorf("level %v, want info", e.Level)
			}
			if !strings.Contains(line.String(), tc.logHas) {
				t.Errorf("log %q does not say %q", line.String(), tc.logHas)
			}
			if strings.Contains(line.String(), tc.logNone) {
				t.Errorf("log %q says %q", line.String(), tc.logNone)
			}
		})
	}
}
