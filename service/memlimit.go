package service

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// The default Go memory limit (debug.SetMemoryLimit), used when GOMEMLIMIT
// is not set: 2.5 × MAX_BUFFERED_BYTES + 24 MiB, at most 90% of the
// container's memory. The design's bound is peak RSS ≤ 3 ×
// MAX_BUFFERED_BYTES + 48 MiB. Measured (docs/BENCHMARKS.md, "Memory"),
// with the buffer kept full: peak RSS is the Go limit plus 13-16 MiB on
// kfake, and 25-27 MiB on a real broker once the binary carried the
// tracing and store clients (the binary, stacks, the collector's own data,
// pages not yet returned); at 16 MiB a limit of 72 MiB (2.5 × + 32 MiB)
// gave 97-99 MiB on Kafka 4.4.0 against the bound of 96, so the limit is
// 2.5 × + 24 MiB (64 MiB at 16). Lower limits cost no CPU per record in
// the measurements: the live heap (records, the client's structures,
// fetches, request bodies) stays well below. Half a budget of room for the collector keeps it from running
// all the time when MAX_BUFFERED_BYTES is large.
const (
	memLimitPerBudget = 2.5
	memLimitFixed     = 24 << 20
	// cgroupShare is the part of the container's memory the Go runtime may
	// use: the rest is for what it does not count (the binary's text,
	// thread stacks outside Go, the kernel's page cache charged to the
	// container).
	cgroupShare = 0.9
	// noLimit is the smallest cgroup v1 value read as "no limit" (v1 writes
	// the largest page-aligned int64 for unlimited).
	noLimit = 1 << 60
)

// memoryLimit returns the Go memory limit for a MAX_BUFFERED_BYTES budget
// and a container memory limit (0: none), and the reason for it.
func memoryLimit(budget, cgroup int64) (int64, string) {
	limit := int64(memLimitPerBudget*float64(budget)) + memLimitFixed
	if cgroup > 0 {
		if c := int64(cgroupShare * float64(cgroup)); c < limit {
			return c, fmt.Sprintf("90%% of the container's memory limit (%d bytes), below 2.5 × MAX_BUFFERED_BYTES + 24 MiB (%d bytes)", cgroup, limit)
		}
	}
	return limit, "2.5 × MAX_BUFFERED_BYTES + 24 MiB"
}

// cgroupMemoryLimit returns the memory limit of this process's cgroup in
// bytes, 0 if it has none, and the file that set it. fsys is the file
// system's root ("/" in production): it reads proc/self/cgroup to find the
// process's cgroup, then the cgroup v2 memory.max (under sys/fs/cgroup) or
// the cgroup v1 memory.limit_in_bytes (under sys/fs/cgroup/memory) of that
// cgroup and of each of its ancestors, and returns the smallest. In a
// container with its own cgroup namespace the process's cgroup is the root
// of the mount, which is read in any case.
func cgroupMemoryLimit(fsys fs.FS) (int64, string) {
	var v1, v2 []string // the process's cgroup paths, relative
	if b, err := fs.ReadFile(fsys, "proc/self/cgroup"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			// hierarchy-ID:controller-list:cgroup-path
			f := strings.SplitN(sc.Text(), ":", 3)
			if len(f) != 3 {
				continue
			}
			p := strings.Trim(path.Clean("/"+f[2]), "/")
			switch {
			case f[0] == "0" && f[1] == "":
				v2 = append(v2, p)
			case slices.Contains(strings.Split(f[1], ","), "memory"):
				v1 = append(v1, p)
			}
		}
	}
	var (
		best int64
		from string
	)
	try := func(dir, file string, paths []string) {
		// The cgroup and its ancestors up to the mount's root.
		for _, p := range append(paths, "") {
			for {
				if n, ok := readLimit(fsys, path.Join(dir, p, file)); ok && (best == 0 || n < best) {
					best, from = n, "/"+path.Join(dir, p, file)
				}
				if p == "" {
					break
				}
				if p = path.Dir(p); p == "." {
					p = ""
				}
			}
		}
	}
	try("sys/fs/cgroup", "memory.max", v2)
	try("sys/fs/cgroup/memory", "memory.limit_in_bytes", v1)
	return best, from
}

// readLimit reads a cgroup memory limit file: a number of bytes, or "max"
// (v2) or a value of at least 2^60 (v1) for none.
func readLimit(fsys fs.FS, name string) (int64, bool) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= noLimit {
		return 0, false
	}
	return n, true
}

var memLimitOnce sync.Once

// setMemoryLimit sets the Go runtime's memory limit from MAX_BUFFERED_BYTES
// (budget) and the container's memory limit, unless GOMEMLIMIT is set in
// the environment (then the runtime has it and it is left alone). It acts
// and logs once per process.
func setMemoryLimit(budget int64, log *zap.Logger) {
	memLimitOnce.Do(func() {
		applyMemoryLimit(budget, os.LookupEnv, os.DirFS("/"), debug.SetMemoryLimit, log)
	})
}

// applyMemoryLimit is setMemoryLimit with its environment, file system and
// runtime passed in; it returns the limit set, or -1 if it set none.
func applyMemoryLimit(budget int64, lookup func(string) (string, bool), fsys fs.FS, set func(int64) int64, log *zap.Logger) int64 {
	if v, ok := lookup("GOMEMLIMIT"); ok && v != "" {
		log.Info("memory limit: GOMEMLIMIT is set; the runtime's limit is left as it says",
			zap.String("GOMEMLIMIT", v))
		return -1
	}
	cg, from := cgroupMemoryLimit(fsys)
	limit, why := memoryLimit(budget, cg)
	set(limit)
	fields := []zap.Field{
		zap.Int64("limit_bytes", limit), zap.String("limit", mib(limit)), zap.String("from", why),
		zap.Int64("max_buffered_bytes", budget),
	}
	if cg > 0 {
		fields = append(fields, zap.Int64("container_memory_bytes", cg), zap.String("container_memory_file", from))
	} else {
		fields = append(fields, zap.String("container_memory", "no limit found"))
	}
	log.Info("memory limit set for the Go runtime (GOMEMLIMIT unset; set it to override)", fields...)
	return limit
}

func mib(n int64) string {
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
}
