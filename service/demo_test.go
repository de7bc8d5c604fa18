package service

import (
	"net"
	"strings"
	"testing"
)

// taken listens on a free port for the test's duration and returns its
// address as METRICS_ADDR would name it.
func taken(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// TestDemoMetricsListener checks where the demo serves its metrics: on
// the default address, or on a free port when that is taken (saying so);
// an address the operator chose and that is taken is an error naming
// METRICS_ADDR.
func TestDemoMetricsListener(t *testing.T) {
	busy := taken(t)

	ln, note, err := demoMetricsListener(busy, false)
	if err != nil {
		t.Fatalf("default address taken: got %v, want a free port", err)
	}
	defer ln.Close()
	if ln.Addr().String() == busy {
		t.Errorf("got %s, want another port", ln.Addr())
	}
	if !strings.Contains(note, busy+" is in use") || !strings.Contains(note, "METRICS_ADDR") {
		t.Errorf("got note %q, want it to say %s is in use and name METRICS_ADDR", note, busy)
	}

	free, note, err := demoMetricsListener("127.0.0.1:0", true)
	if err != nil || note != "" {
		t.Fatalf("free address: got %v %q, want it used without a note", err, note)
	}
	free.Close()

	if ln, _, err := demoMetricsListener(busy, true); err == nil {
		ln.Close()
		t.Fatalf("chosen address taken: got a listener on %s, want an error", ln.Addr())
	} else if !strings.Contains(err.Error(), "METRICS_ADDR="+busy) {
		t.Errorf("got %q, want it to name METRICS_ADDR=%s", err, busy)
	}
}

// TestDemoMetricsAddrTaken runs the demo with METRICS_ADDR on a taken
// port: exit 1 before anything starts, naming METRICS_ADDR.
func TestDemoMetricsAddrTaken(t *testing.T) {
	busy := taken(t)
	env := map[string]string{"METRICS_ADDR": busy}
	var stdout, stderr strings.Builder
	code := run([]string{"demo"}, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &stdout, &stderr)
	if code != exitRuntime || !strings.Contains(stderr.String(), "METRICS_ADDR="+busy) {
		t.Errorf("got exit %d and %q, want 1 naming METRICS_ADDR=%s", code, stderr.String(), busy)
	}
	if strings.Contains(stdout.String(), "msk-consumer demo") {
		t.Errorf("got the banner, want the demo not started:\n%s", stdout.String())
	}
}

// TestDemoMetricsAddrInvalid checks that an invalid METRICS_ADDR is an
// invalid configuration (exit 2), as for the service.
func TestDemoMetricsAddrInvalid(t *testing.T) {
	env := map[string]string{"METRICS_ADDR": "9090"}
	var stdout, stderr strings.Builder
	code := run([]string{"demo"}, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &stdout, &stderr)
	if code != exitConfig || !strings.Contains(stderr.String(), `METRICS_ADDR="9090": expected a listen address`) {
		t.Errorf("got exit %d and %q, want 2 naming METRICS_ADDR", code, stderr.String())
	}
}
