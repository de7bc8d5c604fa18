package config

import (
	"slices"
	"strings"
	"testing"
)

// TestUnusedIsWarning checks the contract's rule that a known variable the
// configuration does not use (set by a platform for another container) is
// a warning, never a problem, and that its value is then not checked
// either: what is ignored cannot be wrong.
func TestUnusedIsWarning(t *testing.T) {
	cert := tempFile(t, "cert.pem")
	key := tempFile(t, "key.pem")
	tests := []struct {
		name string
		kv   []string
		want []string // Warning.String() lines
	}{
		{name: "nothing unused"},
		{name: "redis url without a store", kv: []string{"REDIS_URL", "redis://h:6379"},
			want: []string{"REDIS_URL: set, but IDEMPOTENCY_STORE=none does not use it (IDEMPOTENCY_STORE=redis does); ignored"}},
		{name: "an unused value is not checked", kv: []string{"REDIS_URL", "http://not-redis"},
			want: []string{"REDIS_URL: set, but IDEMPOTENCY_STORE=none does not use it (IDEMPOTENCY_STORE=redis does); ignored"}},
		{name: "a store's settings without the store", kv: []string{"IDEMPOTENCY_TABLE", "t-1", "IDEMPOTENCY_KEY_PREFIX", "p", "IDEMPOTENCY_IN_PROGRESS_TTL", "1m"},
			want: []string{
				"IDEMPOTENCY_KEY_PREFIX: set, but IDEMPOTENCY_STORE=none does not use it (IDEMPOTENCY_STORE=redis or dynamodb does); ignored",
				"IDEMPOTENCY_IN_PROGRESS_TTL: set, but IDEMPOTENCY_STORE=none does not use it (IDEMPOTENCY_STORE=redis or dynamodb does); ignored",
				"IDEMPOTENCY_TABLE: set, but IDEMPOTENCY_STORE=none does not use it (IDEMPOTENCY_STORE=dynamodb does); ignored",
			}},
		{name: "static membership in a share group", kv: []string{"KAFKA_GROUP_TYPE", "share", "KAFKA_INSTANCE_ID", "consumer-0"},
			want: []string{"KAFKA_INSTANCE_ID: set, but KAFKA_GROUP_TYPE=share does not use it (KAFKA_GROUP_TYPE=consumer does); ignored"}},
		{name: "the other store's setting", kv: []string{"IDEMPOTENCY_STORE", "redis", "REDIS_URL", "redis://h:6379", "IDEMPOTENCY_TABLE", "t-1"},
			want: []string{"IDEMPOTENCY_TABLE: set, but IDEMPOTENCY_STORE=redis does not use it (IDEMPOTENCY_STORE=dynamodb does); ignored"}},
		{name: "mtls with tls off", kv: []string{"KAFKA_AUTH", "none", "KAFKA_TLS_CERT_FILE", cert, "KAFKA_TLS_KEY_FILE", key},
			want: []string{
				"KAFKA_TLS_CERT_FILE: set, but TLS is off (KAFKA_TLS=true uses it); ignored",
				"KAFKA_TLS_KEY_FILE: set, but TLS is off (KAFKA_TLS=true uses it); ignored",
			}},
		{name: "missing ca file with tls off", kv: []string{"KAFKA_TLS", "false", "KAFKA_AUTH", "none", "KAFKA_TLS_CA_FILE", "/no/such/file.pem"},
			want: []string{"KAFKA_TLS_CA_FILE: set, but TLS is off (KAFKA_TLS=true uses it); ignored"}},
		{name: "sasl credentials with iam", kv: []string{"KAFKA_SASL_USERNAME", "u", "KAFKA_SASL_PASSWORD", "p"},
			want: []string{
				"KAFKA_SASL_USERNAME: set, but KAFKA_AUTH=iam does not use it (KAFKA_AUTH=scram-sha-512, scram-sha-256 or plain does); ignored",
				"KAFKA_SASL_PASSWORD: set, but KAFKA_AUTH=iam does not use it (KAFKA_AUTH=scram-sha-512, scram-sha-256 or plain does); ignored",
			}},
		{name: "role arn without iam", kv: []string{"KAFKA_AUTH", "none", "KAFKA_IAM_ROLE_ARN", "arn:aws:iam::123456789012:role/r"},
			want: []string{"KAFKA_IAM_ROLE_ARN: set, but KAFKA_AUTH=none does not use it (KAFKA_AUTH=iam does); ignored"}},
		{name: "schema file with json", kv: []string{"VALUE_SCHEMA_FILE", cert},
			want: []string{"VALUE_SCHEMA_FILE: set, but VALUE_FORMAT=json does not use a schema file (VALUE_FORMAT=avro or protobuf does); ignored"}},
		{name: "lambda function with http", kv: []string{"HANDLER", "http", "HTTP_HANDLER_URL", "http://h/x", "LAMBDA_FUNCTION_NAME", "fn"},
			want: []string{"LAMBDA_FUNCTION_NAME: set, but HANDLER=http does not use it (HANDLER=lambda does); ignored"}},
		{name: "cluster arn without the event", kv: []string{"KAFKA_CLUSTER_ARN", "arn:aws:kafka:us-east-1:1:cluster/c/u"},
			want: []string{"KAFKA_CLUSTER_ARN: set, but only HANDLER=lambda and HANDLER=http with HTTP_HANDLER_BODY=msk send the MSK event; ignored"}},
		{name: "proto message with avro", kv: []string{"KEY_FORMAT", "avro", "KEY_SCHEMA_FILE", cert, "KEY_PROTO_MESSAGE", "a.B"},
			want: []string{"KEY_PROTO_MESSAGE: set, but KEY_FORMAT=avro does not use it (KEY_FORMAT=protobuf does); ignored"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(lookup(env(tt.kv...)))
			if err != nil {
				t.Fatalf("got problems\n%v\nwant none", err)
			}
			var got []string
			for _, w := range c.Unused() {
				got = append(got, w.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestLoadEnvironUnused checks that LoadEnviron returns the unused
// variables with the names' warnings, in the table's order.
func TestLoadEnvironUnused(t *testing.T) {
	environ := append(slices.Clone(prodEnviron), "REDIS_URL=redis://cache:6379", "KAFKA_LINGER=5ms")
	_, warnings, err := LoadEnviron(environ)
	if err != nil {
		t.Fatalf("got problems\n%v\nwant none", err)
	}
	var got []string
	for _, w := range warnings {
		got = append(got, w.Var)
	}
	if want := []string{"REDIS_URL", "KAFKA_LINGER"}; !slices.Equal(got, want) {
		t.Errorf("got warnings about %q, want %q", got, want)
	}
}
