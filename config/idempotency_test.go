package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestIdempotencyVariables checks what each store requires and refuses.
func TestIdempotencyVariables(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
		want []string // Error() lines; nil: valid
	}{
		{name: "none by default"},
		{name: "redis", kv: []string{"IDEMPOTENCY_STORE", "redis", "REDIS_URL", "rediss://consumer:hunter2@cache.example.com:6379/0"}},
		{name: "redis in upper case", kv: []string{"IDEMPOTENCY_STORE", "REDIS", "REDIS_URL", "redis://127.0.0.1:6379"}},
		{name: "redis without a url", kv: []string{"IDEMPOTENCY_STORE", "redis"},
			want: []string{"REDIS_URL: required with IDEMPOTENCY_STORE=redis: redis://host:port or rediss://user:password@host:port"}},
		{name: "redis url of another scheme, password redacted", kv: []string{"IDEMPOTENCY_STORE", "redis", "REDIS_URL", "http://u:hunter2@h:6379"},
			want: []string{`REDIS_URL="http://u:xxxxx@h:6379": expected redis://[user:password@]host:port[/db], or rediss:// for TLS: scheme must be redis or rediss`}},
		{name: "redis url with a path that is no database", kv: []string{"IDEMPOTENCY_STORE", "redis", "REDIS_URL", "redis://h:6379/cache"},
			want: []string{`REDIS_URL="redis://h:6379/cache": expected redis://[user:password@]host:port[/db], or rediss:// for TLS: the path must be a database number`}},
		{name: "dynamodb", kv: []string{"IDEMPOTENCY_STORE", "dynamodb", "IDEMPOTENCY_TABLE", "msk-consumer-idempotency"}},
		{name: "dynamodb without a table", kv: []string{"IDEMPOTENCY_STORE", "dynamodb"},
			want: []string{"IDEMPOTENCY_TABLE: required with IDEMPOTENCY_STORE=dynamodb: the table's name (deploy/dynamodb/table.json)"}},
		{name: "dynamodb without a region", kv: []string{"KAFKA_AUTH", "none", "AWS_REGION", "", "IDEMPOTENCY_STORE", "dynamodb", "IDEMPOTENCY_TABLE", "t-1"},
			want: []string{"AWS_REGION: required with IDEMPOTENCY_STORE=dynamodb: the table's region (AWS_REGION or AWS_DEFAULT_REGION)"}},
		{name: "bad table name", kv: []string{"IDEMPOTENCY_STORE", "dynamodb", "IDEMPOTENCY_TABLE", "my table"},
			want: []string{`IDEMPOTENCY_TABLE="my table": expected a DynamoDB table name: 3-255 characters of a-z, A-Z, 0-9, '_', '-', '.'`}},
		{name: "unknown store", kv: []string{"IDEMPOTENCY_STORE", "memcached"},
			want: []string{`IDEMPOTENCY_STORE="memcached": expected none, redis or dynamodb`}},
		{name: "header key", kv: []string{"IDEMPOTENCY_STORE", "redis", "REDIS_URL", "redis://h:6379", "IDEMPOTENCY_KEY", "header:message-id"}},
		{name: "header key without a name", kv: []string{"IDEMPOTENCY_STORE", "redis", "REDIS_URL", "redis://h:6379", "IDEMPOTENCY_KEY", "header:"},
			want: []string{`IDEMPOTENCY_KEY="header:": expected offset, or header:NAME with NAME a record header's name`}},
		{name: "key of neither kind", kv: []string{"IDEMPOTENCY_KEY", "key"},
			want: []string{`IDEMPOTENCY_KEY="key": expected offset, or header:NAME with NAME a record header's name`}},
		{name: "claims outlive the record", kv: []string{"IDEMPOTENCY_STORE", "redis", "REDIS_URL", "redis://h:6379", "IDEMPOTENCY_TTL", "30s"},
			want: []string{`IDEMPOTENCY_IN_PROGRESS_TTL="40s": expected a Go duration less than IDEMPOTENCY_TTL (30s)`}},
		{name: "in-progress ttl of zero", kv: []string{"IDEMPOTENCY_STORE", "redis", "REDIS_URL", "redis://h:6379", "IDEMPOTENCY_IN_PROGRESS_TTL", "0s"},
			want: []string{`IDEMPOTENCY_IN_PROGRESS_TTL="0s": expected a Go duration > 0, such as 250ms, 3s or 2m, or unset for no limit`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(lookup(env(tt.kv...)))
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestIdempotencyEffective(t *testing.T) {
	c, err := Load(lookup(env("IDEMPOTENCY_STORE", "redis", "REDIS_URL", "redis://h:6379", "HTTP_HANDLER_TIMEOUT", "5s", "IDEMPOTENCY_KEY", "header:id")))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.IdempotencyPrefix(); got != "brands-sync-test" {
		t.Errorf("prefix: got %q, want the group id", got)
	}
	if got := c.IdempotencyInProgressTTL(); got != 15*time.Second {
		t.Errorf("in-progress ttl: got %s, want HTTP_HANDLER_TIMEOUT + 10s", got)
	}
	if got := c.Idempotency.Header(); got != "id" {
		t.Errorf("header: got %q, want id", got)
	}
	c, err = Load(lookup(env("IDEMPOTENCY_STORE", "dynamodb", "IDEMPOTENCY_TABLE", "t-1", "IDEMPOTENCY_KEY_PREFIX", "prod", "IDEMPOTENCY_IN_PROGRESS_TTL", "2m")))
	if err != nil {
		t.Fatal(err)
	}
	if c.IdempotencyPrefix() != "prod" || c.IdempotencyInProgressTTL() != 2*time.Minute || c.Idempotency.Header() != "" {
		t.Errorf("got %q %s %q, want prod 2m0s and offset keys", c.IdempotencyPrefix(), c.IdempotencyInProgressTTL(), c.Idempotency.Header())
	}
	var b strings.Builder
	c, _ = Load(lookup(env("IDEMPOTENCY_STORE", "redis", "REDIS_URL", "rediss://consumer:hunter2@h:6379/0")))
	if err := c.Print(&b); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); strings.Contains(out, "hunter2") || !strings.Contains(out, "REDIS_URL=rediss://consumer:xxxxx@h:6379/0\n") {
		t.Errorf("got\n%s\nwant REDIS_URL with its password redacted", out)
	}
}

// TestExampleIdempotencyBlocks loads each example environment with its
// commented idempotency settings uncommented, so that what the examples
// show an operator to enable is valid.
func TestExampleIdempotencyBlocks(t *testing.T) {
	for _, envName := range []string{"dev", "stage", "prod"} {
		t.Run(envName, func(t *testing.T) {
			path := "examples/" + envName + ".env"
			vars := parseEnvFile(t, path)
			n := 0
			for line := range strings.Lines(readFile(t, path)) {
				line = strings.TrimSpace(line)
				for _, p := range []string{"#IDEMPOTENCY_", "#REDIS_URL="} {
					if strings.HasPrefix(line, p) {
						k, v, _ := strings.Cut(line[1:], "=")
						vars[k] = v
						n++
					}
				}
			}
			if n == 0 {
				t.Fatalf("%s: got no commented idempotency settings, want them", path)
			}
			c, err := Load(lookup(vars), "example")
			if err != nil {
				t.Fatalf("%s with its idempotency settings:\n%v", path, err)
			}
			if !c.Idempotency.Enabled() {
				t.Errorf("%s: got no store, want one", path)
			}
		})
	}
}
