package main

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinaryDemoInterrupt runs `consumer demo` as the README's `make run`
// does and stops it with Ctrl-C (SIGINT): it must print its summary and exit
// 0, not panic.
func TestBinaryDemoInterrupt(t *testing.T) {
	bin := binary(t)
	cmd := exec.Command(bin, "demo")
	cmd.Env = []string{"METRICS_ADDR=" + freeAddr(t), "LOG_LEVEL=warn"}
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// Wait until the pipeline has dead-lettered a record: it is running.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stdout.String(), ">> dead-lettered") {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the demo dead-lettered nothing within 60s; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the demo did not stop within 30s of SIGINT; stderr:\n%s", stderr.String())
	}
	if code := exitCode(err); code != 0 {
		t.Errorf("exit code: got %d, want 0; stderr:\n%s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "panic") {
		t.Errorf("the demo panicked:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), "demo: produced") {
		t.Errorf("no summary line; stdout:\n%s", stdout.String())
	}
}
