package service

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestCheckLambdaDryRun: with HANDLER=lambda, consumer check invokes the
// function with InvocationType DryRun through the handler's own client and
// fails, naming the function, when Lambda does not know it.
func TestCheckLambdaDryRun(t *testing.T) {
	var dryRuns atomic.Int64
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Invocation-Type") != "DryRun" {
			t.Errorf("got invocation type %q, want DryRun", r.Header.Get("X-Amz-Invocation-Type"))
		}
		dryRuns.Add(1)
		if strings.Contains(r.URL.Path, "/functions/orders-fn/") {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("X-Amzn-Errortype", "ResourceNotFoundException")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"Type":"User","Message":"Function not found: missing-fn"}`))
	}))
	defer fake.Close()

	c := startOpsCluster(t)
	for k, v := range map[string]string{"HANDLER": "lambda", "LAMBDA_FUNCTION_NAME": "orders-fn", "AWS_REGION": "us-east-1"} {
		c.env[k] = v
	}
	// The AWS SDK reads its credentials and endpoints from the process.
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", fake.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "us-east-1")
	code, out, errOut := c.run("check", "--timeout", "3s")
	if code != exitOK || !strings.Contains(out, "✓ Lambda handler orders-fn: Invoke with InvocationType DryRun accepted") {
		t.Fatalf("got exit %d:\n%s%s\nwant 0 with the DryRun accepted", code, out, errOut)
	}
	c.env["LAMBDA_FUNCTION_NAME"] = "missing-fn"
	code, out, _ = c.run("check", "--timeout", "3s")
	if code != exitRuntime || !strings.Contains(out, "✗ Lambda handler missing-fn") {
		t.Fatalf("got exit %d:\n%s\nwant 1 naming the function Lambda does not know", code, out)
	}
	if dryRuns.Load() != 2 {
		t.Errorf("got %d DryRun invocations, want 2", dryRuns.Load())
	}
}
