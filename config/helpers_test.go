package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// env returns a lookup over the three required variables and AWS_REGION,
// overridden by kv pairs. Tests never read the process environment.
func env(kv ...string) map[string]string {
	m := map[string]string{
		"KAFKA_BROKERS":  "b-1.msk.example.com:9098,b-2.msk.example.com:9098",
		"KAFKA_TOPICS":   "products",
		"KAFKA_GROUP_ID": "brands-sync-test",
		"AWS_REGION":     "eu-west-1",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// without deletes keys from m, so that they are not set at all (as opposed
// to set and empty).
func without(m map[string]string, keys ...string) map[string]string {
	for _, k := range keys {
		delete(m, k)
	}
	return m
}

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// problems returns the Errors inside err, failing the test if err is not
// one.
func problems(t *testing.T, err error) Errors {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got error %v (%T), want config.Errors", err, err)
	}
	return errs
}

func varsOf(errs Errors) []string {
	out := make([]string, len(errs))
	for i, p := range errs {
		out[i] = p.Var
	}
	return out
}

// tempFile writes a readable file and returns its path.
func tempFile(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
