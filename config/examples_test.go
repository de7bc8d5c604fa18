package config

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// parseEnvFile reads a KEY=VALUE file as docker --env-file does: one
// variable per line, blank lines and lines starting with '#' ignored, the
// value taken literally after the first '='.
func parseEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			t.Errorf("%s:%d: not KEY=VALUE: %q", path, n, line)
			continue
		}
		if _, dup := vars[k]; dup {
			t.Errorf("%s:%d: %s set twice", path, n, k)
		}
		vars[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vars
}

// TestExampleEnvFiles loads every config/examples/*.env as `consumer config`
// would, and checks what the examples are there to show: MSK IAM on the
// IAM listener, a group per environment, no secret in a file.
func TestExampleEnvFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("examples", "*.env"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("want the dev, stage and prod examples, found %v", files)
	}
	groups := map[string]string{}
	for _, path := range files {
		envName := strings.TrimSuffix(filepath.Base(path), ".env")
		t.Run(envName, func(t *testing.T) {
			vars := parseEnvFile(t, path)
			for k := range vars {
				// A misspelt variable would be silently ignored by Load.
				if varIndex(k) == len(varOrder) && k != envAWSDefaultRegion {
					t.Errorf("%s: unknown variable %s", path, k)
				}
				if isSecret(k) {
					t.Errorf("%s: secret %s belongs in a secret store, not an example file", path, k)
				}
			}
			cfg, err := Load(func(k string) (string, bool) {
				v, ok := vars[k]
				return v, ok
			}, "example")
			if err != nil {
				t.Fatalf("%s does not load:\n%v", path, err)
			}
			if cfg.Kafka.Auth != AuthIAM || !cfg.Kafka.TLS || cfg.Kafka.AWSRegion == "" {
				t.Errorf("%s: want MSK IAM over TLS with a region, got auth=%s tls=%v region=%q",
					path, cfg.Kafka.Auth, cfg.Kafka.TLS, cfg.Kafka.AWSRegion)
			}
			for _, b := range cfg.Kafka.Brokers {
				if _, port, _ := net.SplitHostPort(b); port != "9098" {
					t.Errorf("%s: broker %s: MSK IAM listens on 9098", path, b)
				}
			}
			if !strings.HasSuffix(cfg.Kafka.GroupID, "-"+envName) {
				t.Errorf("%s: KAFKA_GROUP_ID=%s: want one group per environment, ending in -%s", path, cfg.Kafka.GroupID, envName)
			}
			if other, dup := groups[cfg.Kafka.GroupID]; dup {
				t.Errorf("%s and %s share the group %s", path, other, cfg.Kafka.GroupID)
			}
			groups[cfg.Kafka.GroupID] = path
		})
	}
}

// TestDeployEnvFilesMatchExamples keeps the Kubernetes overlays'
// consumer.env (the ConfigMap of each environment) in step with the
// examples: same variables, same values.
func TestDeployEnvFilesMatchExamples(t *testing.T) {
	overlays, err := filepath.Glob(filepath.Join("..", "deploy", "k8s", "overlays", "*", "consumer.env"))
	if err != nil {
		t.Fatal(err)
	}
	if len(overlays) == 0 {
		t.Skip("no deploy/k8s overlays in this tree")
	}
	for _, path := range overlays {
		envName := filepath.Base(filepath.Dir(path))
		example := filepath.Join("examples", envName+".env")
		want := parseEnvFile(t, example)
		got := parseEnvFile(t, path)
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%s: %s=%q, but %s has %q", path, k, g, example, v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s sets %s, which %s does not", path, k, example)
			}
		}
	}
}

// TestECSTaskDefinition loads the environment of deploy/ecs's task
// definition as the container will see it, checks it is prod.env's, and that
// ECS waits longer than SHUTDOWN_TIMEOUT before SIGKILL.
func TestECSTaskDefinition(t *testing.T) {
	path := filepath.Join("..", "deploy", "ecs", "task-definition.json")
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		t.Skip("no deploy/ecs in this tree")
	}
	if err != nil {
		t.Fatal(err)
	}
	var td struct {
		ContainerDefinitions []struct {
			Name        string
			StopTimeout int
			HealthCheck struct{ Command []string }
			Environment []struct{ Name, Value string }
			Secrets     []struct{ Name, ValueFrom string }
		}
	}
	if err := json.Unmarshal(b, &td); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(td.ContainerDefinitions) != 1 {
		t.Fatalf("%s: want one container, got %d", path, len(td.ContainerDefinitions))
	}
	c := td.ContainerDefinitions[0]
	vars := map[string]string{}
	for _, e := range c.Environment {
		if _, dup := vars[e.Name]; dup {
			t.Errorf("%s: %s set twice", path, e.Name)
		}
		vars[e.Name] = e.Value
		if isSecret(e.Name) {
			t.Errorf("%s: %s is a secret: put it in \"secrets\", not \"environment\"", path, e.Name)
		}
	}
	for _, s := range c.Secrets {
		vars[s.Name] = "from-secrets-manager"
	}
	cfg, err := Load(func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}, "example")
	if err != nil {
		t.Fatalf("%s: the container's environment does not load:\n%v", path, err)
	}
	for k, v := range parseEnvFile(t, filepath.Join("examples", "prod.env")) {
		if vars[k] != v {
			t.Errorf("%s: %s=%q, but examples/prod.env has %q", path, k, vars[k], v)
		}
	}
	stop := time.Duration(c.StopTimeout) * time.Second
	if stop <= cfg.Batch.ShutdownTimeout || stop > 120*time.Second {
		t.Errorf("%s: stopTimeout %v: want more than SHUTDOWN_TIMEOUT (%v) and at most ECS's 120s", path, stop, cfg.Batch.ShutdownTimeout)
	}
	if got := strings.Join(c.HealthCheck.Command, " "); got != "CMD /consumer healthcheck" {
		t.Errorf("%s: healthCheck %q, want CMD /consumer healthcheck", path, got)
	}
}
