package config

import (
	"bufio"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
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

// secretURLs pairs each URL variable with the secret that is sent to it
// (HTTP_HANDLER_AUTH_HEADER as the Authorization header, the registry
// password as basic auth).
var secretURLs = map[string]string{
	envHTTPHandlerURL:    envHTTPHandlerAuth,
	envSchemaRegistryURL: envSchemaRegistryPass,
}

// checkSecretURLs fails for a URL that is, or may be, sent a secret over
// plain http. In an env file the secrets are never present but every
// deployment can inject them (the Kubernetes Secret msk-consumer-secrets,
// ECS "secrets"), so there a URL counts as sent one whenever it is set;
// secretSent tells for a deployment file that lists its secrets.
func checkSecretURLs(t *testing.T, path string, vars map[string]string, secretSent func(secret string) bool) {
	t.Helper()
	for urlVar, secret := range secretURLs {
		raw, ok := vars[urlVar]
		if !ok || !secretSent(secret) {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" || u.Hostname() == "" {
			t.Errorf("%s: %s=%q is sent %s: want an https URL", path, urlVar, raw, secret)
		}
	}
}

// clusterLocal reports whether host is a Kubernetes cluster DNS name, which
// only pods of that cluster can resolve.
func clusterLocal(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return strings.HasSuffix(host, ".cluster.local") || strings.HasSuffix(host, ".svc")
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
			// The examples are also the ECS task's environment: a URL the
			// task cannot resolve is no example.
			checkSecretURLs(t, path, vars, func(string) bool { return true })
			for urlVar := range secretURLs {
				if u, err := url.Parse(vars[urlVar]); err == nil && clusterLocal(u.Hostname()) {
					t.Errorf("%s: %s=%q: a cluster DNS name, which ECS cannot resolve", path, urlVar, vars[urlVar])
				}
			}
			if other, dup := groups[cfg.Kafka.GroupID]; dup {
				t.Errorf("%s and %s share the group %s", path, other, cfg.Kafka.GroupID)
			}
			groups[cfg.Kafka.GroupID] = path
		})
	}
}

// TestDeployEnvFilesMatchExamples keeps each Kubernetes overlay in step
// with the example of its environment: its consumer.env (the ConfigMap) has
// the same variables and values, the KEDA scaler reads the lag of the same
// brokers, group, topic and region, as the same offset reset policy, with
// MSK IAM on KEDA's stable kafka scaler; and the image is a pinned release.
func TestDeployEnvFilesMatchExamples(t *testing.T) {
	k8s := filepath.Join("..", "deploy", "k8s")
	overlays, err := filepath.Glob(filepath.Join(k8s, "overlays", "*", "consumer.env"))
	if err != nil {
		t.Fatal(err)
	}
	if len(overlays) == 0 {
		t.Skip("no deploy/k8s overlays in this tree")
	}
	base := readFile(t, filepath.Join(k8s, "base", "scaledobject.yaml"))
	baseImages := readFile(t, filepath.Join(k8s, "base", "kustomization.yaml"))
	for _, path := range overlays {
		envName := filepath.Base(filepath.Dir(path))
		example := filepath.Join("examples", envName+".env")
		want := parseEnvFile(t, example)
		got := parseEnvFile(t, path)
		kustomization := filepath.Join(filepath.Dir(path), "kustomization.yaml")
		overlay := readFile(t, kustomization)
		t.Run(envName+"/consumer.env", func(t *testing.T) {
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
			checkSecretURLs(t, path, got, func(string) bool { return true })
		})
		t.Run(envName+"/scaledobject", func(t *testing.T) {
			typ, meta := scalerTrigger(t, base)
			for k, v := range scalerPatches(overlay) {
				meta[k] = v
			}
			if typ != "kafka" {
				t.Errorf("ScaledObject trigger type %q: want kafka, KEDA's stable Kafka scaler (apache-kafka is the experimental one)", typ)
			}
			startOffset := got[envKafkaStartOffset]
			if startOffset == "" {
				startOffset = "earliest" // the service's default
			}
			for k, v := range map[string]string{
				"bootstrapServers":  got[envKafkaBrokers],
				"consumerGroup":     got[envKafkaGroupID],
				"awsRegion":         got[envAWSRegion],
				"offsetResetPolicy": startOffset,
				"sasl":              "oauthbearer",
				"saslTokenProvider": "aws_msk_iam",
				"tls":               "enable",
			} {
				if meta[k] != v {
					t.Errorf("%s + base scaledobject.yaml: scaler %s=%q, want %q", kustomization, k, meta[k], v)
				}
			}
			if topics := strings.Split(got[envKafkaTopics], ","); meta["topic"] == "" || !strings.Contains(","+got[envKafkaTopics]+",", ","+meta["topic"]+",") {
				t.Errorf("%s: scaler topic %q is not one of KAFKA_TOPICS %v", kustomization, meta["topic"], topics)
			}
		})
		t.Run(envName+"/image", func(t *testing.T) { checkImageTags(t, kustomization, overlay) })
	}
	t.Run("base/image", func(t *testing.T) { checkImageTags(t, "base/kustomization.yaml", baseImages) })
}

// checkImageTags fails unless every image of a kustomization is pinned to a
// release tag (the Deployment pulls IfNotPresent).
func checkImageTags(t *testing.T, file, text string) {
	t.Helper()
	tags := newTagRE.FindAllStringSubmatch(text, -1)
	if len(tags) == 0 {
		t.Errorf("%s: no images newTag", file)
	}
	for _, m := range tags {
		if tag := strings.Trim(m[1], `"'`); !releaseTagRE.MatchString(tag) {
			t.Errorf("%s: image newTag %q: want a release version such as 1.0.0, never a moving tag", file, tag)
		}
	}
}

var (
	newTagRE     = regexp.MustCompile(`(?m)^\s*newTag:\s*(\S+)\s*$`)
	releaseTagRE = regexp.MustCompile(`^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	// A JSON6902 patch of one of the first trigger's metadata values.
	scalerPatchRE = regexp.MustCompile(`(?m)^\s*- op: (?:replace|add)\s*\n\s*path: /spec/triggers/0/metadata/(\w+)\s*\n\s*value: (.*?)\s*$`)
	triggerTypeRE = regexp.MustCompile(`(?m)^  triggers:\s*\n    - type: (\S+)`)
	metaEntryRE   = regexp.MustCompile(`^        (\w+): (.*?)\s*$`)
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// scalerTrigger reads the type and metadata of the first trigger of the
// base ScaledObject (a flat map of strings, as in KEDA's CRD).
func scalerTrigger(t *testing.T, yaml string) (string, map[string]string) {
	t.Helper()
	m := triggerTypeRE.FindStringSubmatchIndex(yaml)
	if m == nil {
		t.Fatal("base scaledobject.yaml: no spec.triggers[0].type")
	}
	typ := yaml[m[2]:m[3]]
	rest := yaml[m[1]:]
	i := strings.Index(rest, "\n      metadata:\n")
	if i < 0 {
		t.Fatal("base scaledobject.yaml: no metadata in the first trigger")
	}
	meta := map[string]string{}
	for _, line := range strings.Split(rest[i+len("\n      metadata:\n"):], "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		e := metaEntryRE.FindStringSubmatch(line)
		if e == nil {
			break
		}
		meta[e[1]] = strings.Trim(e[2], `"'`)
	}
	return typ, meta
}

// scalerPatches reads an overlay's patches of the first trigger's metadata.
func scalerPatches(kustomization string) map[string]string {
	out := map[string]string{}
	for _, m := range scalerPatchRE.FindAllStringSubmatch(kustomization, -1) {
		out[m[1]] = strings.Trim(m[2], `"'`)
	}
	return out
}

// TestECSTaskDefinition loads the environment of each of deploy/ecs's task
// definitions as the container will see it, checks it is the example's
// (task-definition.json is prod.env's, task-definition-<variant>.json
// prod-<variant>.env's), and that ECS waits longer than SHUTDOWN_TIMEOUT
// before SIGKILL; and that every prod example has its task definition.
func TestECSTaskDefinition(t *testing.T) {
	dir := filepath.Join("..", "deploy", "ecs")
	files, err := filepath.Glob(filepath.Join(dir, "task-definition*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skip("no deploy/ecs in this tree")
	}
	covered := map[string]bool{}
	for _, path := range files {
		variant := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "task-definition"), ".json")
		example := filepath.Join("examples", "prod"+variant+".env")
		covered[example] = true
		t.Run(filepath.Base(path), func(t *testing.T) { checkTaskDefinition(t, path, example) })
	}
	examples, err := filepath.Glob(filepath.Join("examples", "prod*.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range examples {
		if !covered[e] {
			t.Errorf("%s has no task definition in deploy/ecs (task-definition%s.json)", e,
				strings.TrimSuffix(strings.TrimPrefix(filepath.Base(e), "prod"), ".env"))
		}
	}
}

func checkTaskDefinition(t *testing.T, path, example string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var td struct {
		TaskRoleArn          string
		ContainerDefinitions []struct {
			Name        string
			Image       string
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
	secrets := map[string]bool{}
	for _, s := range c.Secrets {
		vars[s.Name] = "from-secrets-manager"
		secrets[s.Name] = true
	}
	if vars[envHandler] == "http" && !secrets[envHTTPHandlerAuth] {
		t.Errorf("%s: HANDLER=http without %s in \"secrets\"", path, envHTTPHandlerAuth)
	}
	// The task role is what the service authenticates with, to MSK and
	// to Lambda (deploy/iam/lambda-invoke-policy.json goes on it).
	if !strings.HasPrefix(td.TaskRoleArn, "arn:aws:iam::") {
		t.Errorf("%s: taskRoleArn %q: want the role the service runs as", path, td.TaskRoleArn)
	}
	checkSecretURLs(t, path, vars, func(secret string) bool { return secrets[secret] })
	for urlVar := range secretURLs {
		if u, err := url.Parse(vars[urlVar]); err == nil && clusterLocal(u.Hostname()) {
			t.Errorf("%s: %s=%q: a Kubernetes cluster DNS name, which an ECS task cannot resolve; use an ECS Service Connect name or an internal load balancer's DNS name",
				path, urlVar, vars[urlVar])
		}
	}
	if _, tag, ok := strings.Cut(c.Image[strings.LastIndex(c.Image, "/")+1:], ":"); !ok || !releaseTagRE.MatchString(tag) {
		t.Errorf("%s: image %q: want a release tag such as :1.0.0, never a moving one", path, c.Image)
	}
	cfg, err := Load(func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}, "example")
	if err != nil {
		t.Fatalf("%s: the container's environment does not load:\n%v", path, err)
	}
	want := parseEnvFile(t, example)
	for k, v := range want {
		if vars[k] != v {
			t.Errorf("%s: %s=%q, but %s has %q", path, k, vars[k], example, v)
		}
	}
	for k := range vars {
		if _, ok := want[k]; !ok && !secrets[k] {
			t.Errorf("%s sets %s, which %s does not", path, k, example)
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

// TestIAMPolicies checks deploy/iam's policies: valid JSON, no wildcard
// actions, the DLQ topic's describe-config permission (the contract ships
// it), and glue:GetSchemaVersion apart from the Kafka policy: Glue is
// called through the default credential chain, never as KAFKA_IAM_ROLE_ARN,
// so it belongs on the task role, which consumer-policy.json may not be on.
func TestIAMPolicies(t *testing.T) {
	dir := filepath.Join("..", "deploy", "iam")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skip("no deploy/iam in this tree")
	}
	actions := map[string]map[string][]string{} // file -> action -> resources
	for _, path := range files {
		var doc struct {
			Version   string
			Statement []struct {
				Sid, Effect      string
				Action, Resource json.RawMessage
			}
		}
		if err := json.Unmarshal([]byte(readFile(t, path)), &doc); err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if doc.Version != "2012-10-17" || len(doc.Statement) == 0 {
			t.Errorf("%s: want Version 2012-10-17 and statements", path)
		}
		name := filepath.Base(path)
		actions[name] = map[string][]string{}
		for _, st := range doc.Statement {
			as, rs := stringOrList(t, path, st.Action), stringOrList(t, path, st.Resource)
			if st.Effect != "Allow" || len(as) == 0 || len(rs) == 0 {
				t.Errorf("%s: statement %s: want Allow with actions and resources", path, st.Sid)
			}
			for _, a := range as {
				if strings.Contains(a, "*") {
					t.Errorf("%s: statement %s: wildcard action %s", path, st.Sid, a)
				}
				actions[name][a] = append(actions[name][a], rs...)
			}
		}
	}
	kafka, glue := actions["consumer-policy.json"], actions["glue-schema-registry-policy.json"]
	if rs := kafka["kafka-cluster:DescribeTopicDynamicConfiguration"]; len(rs) == 0 {
		t.Error("consumer-policy.json: no kafka-cluster:DescribeTopicDynamicConfiguration (the DLQ topic's max.message.bytes and cleanup.policy)")
	} else {
		for _, r := range rs {
			if !strings.HasSuffix(r, "/DLQ_TOPIC") {
				t.Errorf("consumer-policy.json: DescribeTopicDynamicConfiguration on %s: only the dead-letter topics' configuration is read", r)
			}
		}
	}
	for a := range kafka {
		if !strings.HasPrefix(a, "kafka-cluster:") {
			t.Errorf("consumer-policy.json: %s: only kafka-cluster actions belong on the (possibly assumed) Kafka role", a)
		}
	}
	if len(glue) != 1 || glue["glue:GetSchemaVersion"] == nil {
		t.Errorf("glue-schema-registry-policy.json: want glue:GetSchemaVersion alone, got %v", glue)
	}
}

func stringOrList(t *testing.T, path string, raw json.RawMessage) []string {
	t.Helper()
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Errorf("%s: %s: want a string or a list of strings", path, raw)
	}
	return list
}
