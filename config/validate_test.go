package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestProblemError(t *testing.T) {
	tests := []struct {
		name string
		p    Problem
		want string
	}{
		{name: "with value", p: Problem{Var: "BATCH_MAX_RECORDS", Value: "abc", Expected: "expected a whole number >= 1"}, want: `BATCH_MAX_RECORDS="abc": expected a whole number >= 1`},
		{name: "without value", p: Problem{Var: "KAFKA_BROKERS", Expected: "required: comma-separated host:port list"}, want: "KAFKA_BROKERS: required: comma-separated host:port list"},
		{name: "value quoted", p: Problem{Var: "KAFKA_TOPICS", Value: "a\"b\n", Expected: "x"}, want: `KAFKA_TOPICS="a\"b\n": x`},
		{name: "secret value dropped", p: Problem{Var: "KAFKA_SASL_PASSWORD", Value: "hunter2", Expected: "x"}, want: "KAFKA_SASL_PASSWORD: x"},
		{name: "registry secret dropped", p: Problem{Var: "SCHEMA_REGISTRY_PASSWORD", Value: "hunter2", Expected: "x"}, want: "SCHEMA_REGISTRY_PASSWORD: x"},
		{name: "header secret dropped", p: Problem{Var: "HTTP_HANDLER_AUTH_HEADER", Value: "hunter2", Expected: "x"}, want: "HTTP_HANDLER_AUTH_HEADER: x"},
		{name: "url password redacted", p: Problem{Var: "HTTP_HANDLER_URL", Value: "ftp://u:hunter2@h", Expected: "x"}, want: `HTTP_HANDLER_URL="ftp://u:xxxxx@h": x`},
		{name: "url query redacted", p: Problem{Var: "SCHEMA_REGISTRY_URL", Value: "ftp://h/?key=hunter2", Expected: "x"}, want: `SCHEMA_REGISTRY_URL="ftp://h/?key=REDACTED": x`},
		{name: "any url variable redacted", p: Problem{Var: "REDIS_URL", Value: "redis://u:hunter2@h/?token=hunter2", Expected: "x"}, want: `REDIS_URL="redis://u:xxxxx@h/?token=REDACTED": x`},
		{name: "unparsable url hidden", p: Problem{Var: "HTTP_HANDLER_URL", Value: "http://h x/?t=hunter2", Expected: "x"}, want: `HTTP_HANDLER_URL="<redacted>": x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorsAs(t *testing.T) {
	_, err := Load(lookup(env("BATCH_MAX_RECORDS", "abc")))
	wrapped := fmt.Errorf("loading: %w", err)
	if !errors.As(wrapped, &Errors{}) {
		t.Fatalf("got errors.As false for %v, want true", wrapped)
	}
	var errs Errors
	errors.As(wrapped, &errs)
	if got, want := errs.Error(), `BATCH_MAX_RECORDS="abc": expected a whole number >= 1`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestValidateZeroConfig checks that a Config built by hand, not by Load,
// is validated too, and that problems come sorted in the contract's order.
func TestValidateZeroConfig(t *testing.T) {
	errs := problems(t, Config{}.Validate())
	for i := 1; i < len(errs); i++ {
		if varIndex(errs[i-1].Var) > varIndex(errs[i].Var) {
			t.Errorf("got %s before %s, want contract order", errs[i-1].Var, errs[i].Var)
		}
	}
	for _, want := range []string{"KAFKA_BROKERS", "KAFKA_AUTH", "BATCH_MAX_RECORDS", "VALUE_FORMAT", "HANDLER", "METRICS_ADDR", "UNREADY_AFTER"} {
		if !slices.Contains(varsOf(errs), want) {
			t.Errorf("got no problem for %s, want one", want)
		}
	}
	for _, p := range errs {
		if varIndex(p.Var) == len(varOrder) {
			t.Errorf("got problem for unknown variable %q", p.Var)
		}
	}
}

// TestValidateSASLWithoutTLS covers a Config built by hand: Load never
// turns TLS off for SASL unless KAFKA_TLS=false was given.
func TestValidateSASLWithoutTLS(t *testing.T) {
	c, err := Load(lookup(env()))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		explicit bool
		want     []string
	}{
		{name: "implicit", explicit: false, want: []string{"KAFKA_TLS"}},
		{name: "explicit", explicit: true, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := c
			c.Kafka.TLS = false
			c.Kafka.TLSExplicit = tt.explicit
			var errs Errors
			errors.As(c.Validate(), &errs)
			if got := varsOf(errs); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidateDoesNotMutate(t *testing.T) {
	c, err := Load(lookup(env("KAFKA_TOPICS", "a,b", "MAX_BUFFERED_BYTES", "1")))
	if err == nil {
		t.Fatal("got nil error, want one")
	}
	before := c
	before.Kafka.Topics = slices.Clone(c.Kafka.Topics)
	before.Kafka.Brokers = slices.Clone(c.Kafka.Brokers)
	_ = c.Validate()
	if !reflect.DeepEqual(c, before) {
		t.Errorf("got %+v after Validate, want %+v", c, before)
	}
}

func TestValidateHandlerNames(t *testing.T) {
	c, err := Load(lookup(env()))
	if err != nil {
		t.Fatal(err)
	}
	c.Handler.Name = "brandsync"
	tests := []struct {
		name     string
		handlers []string
		wantErr  bool
	}{
		{name: "not compiled in", handlers: nil, wantErr: true},
		{name: "other handlers only", handlers: []string{"pricesync"}, wantErr: true},
		{name: "compiled in", handlers: []string{"pricesync", "brandsync"}, wantErr: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.Validate(tt.handlers...); (err != nil) != tt.wantErr {
				t.Errorf("got error %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestTopicProblem(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		ok    bool
	}{
		{name: "simple", topic: "products", ok: true},
		{name: "all legal characters", topic: "a-Z_0.9", ok: true},
		{name: "249 characters", topic: strings.Repeat("x", 249), ok: true},
		{name: "250 characters", topic: strings.Repeat("x", 250), ok: false},
		{name: "empty", topic: "", ok: false},
		{name: "dot", topic: ".", ok: false},
		{name: "dotdot", topic: "..", ok: false},
		{name: "three dots", topic: "...", ok: true},
		{name: "slash", topic: "a/b", ok: false},
		{name: "colon", topic: "a:b", ok: false},
		{name: "non-ascii", topic: "prödukte", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := topicProblem(tt.topic)
			if got := p == ""; got != tt.ok {
				t.Errorf("got legal %v (%q), want %v", got, p, tt.ok)
			}
		})
	}
}

func TestValidateDurationsShown(t *testing.T) {
	c, err := Load(lookup(env()))
	if err != nil {
		t.Fatal(err)
	}
	c.Batch.HandlerRetryBackoff = 2 * time.Second
	c.Batch.HandlerBackoffMax = 1500 * time.Millisecond
	want := `HANDLER_RETRY_BACKOFF_MAX="1.5s": expected a Go duration >= HANDLER_RETRY_BACKOFF (2s)`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestValidateNewDurations covers STARTUP_TIMEOUT and HANDLER_MAX_RECORD_AGE
// on a Config built by hand, where zero means "no limit" for the record age
// only.
func TestValidateNewDurations(t *testing.T) {
	base, err := Load(lookup(env()))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // Error(), or "" for valid
	}{
		{name: "defaults", modify: func(*Config) {}},
		{name: "record age zero is no limit", modify: func(c *Config) { c.Batch.HandlerMaxRecordAge = 0 }},
		{name: "record age positive", modify: func(c *Config) { c.Batch.HandlerMaxRecordAge = time.Hour }},
		{name: "record age negative", modify: func(c *Config) { c.Batch.HandlerMaxRecordAge = -time.Minute },
			want: `HANDLER_MAX_RECORD_AGE="-1m0s": expected a Go duration > 0, such as 250ms, 3s or 2m, or unset for no limit`},
		{name: "startup timeout zero", modify: func(c *Config) { c.Kafka.StartupTimeout = 0 },
			want: `STARTUP_TIMEOUT="0s": expected a Go duration > 0, such as 250ms, 3s or 2m`},
		{name: "startup timeout negative", modify: func(c *Config) { c.Kafka.StartupTimeout = -time.Second },
			want: `STARTUP_TIMEOUT="-1s": expected a Go duration > 0, such as 250ms, 3s or 2m`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.modify(&c)
			got := ""
			if err := c.Validate(); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
