package provider

import (
	"context"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// namespaceFile is where Kubernetes mounts the pod's namespace with its
// service account token.
const namespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// eksDetector describes the Kubernetes pod the service runs in, from what
// the kubelet puts in every container: the pod name (HOSTNAME), the
// namespace (the service account mount) and, for EKS, the AWS credential
// settings IRSA and EKS Pod Identity inject. The SDK's EKS detector
// (go.opentelemetry.io/contrib/detectors/aws/eks) needs client-go and
// permission to read a ConfigMap for the cluster name; this one needs
// neither. The cluster name, the node and the deployment are left to
// OTEL_RESOURCE_ATTRIBUTES (the downward API, or the OpenTelemetry
// operator's injection).
type eksDetector struct {
	lookup   func(string) (string, bool)
	readFile func(string) ([]byte, error)
}

func (d *eksDetector) get(k string) string {
	v, _ := d.lookup(k)
	return strings.TrimSpace(v)
}

// Detect returns the pod's attributes, or an empty resource outside
// Kubernetes.
func (d *eksDetector) Detect(context.Context) (*resource.Resource, error) {
	if d.get("KUBERNETES_SERVICE_HOST") == "" {
		return resource.Empty(), nil
	}
	var attrs []attribute.KeyValue
	if pod := d.get("HOSTNAME"); pod != "" {
		attrs = append(attrs, semconv.K8SPodName(pod))
	}
	if ns, err := d.readFile(namespaceFile); err == nil && len(strings.TrimSpace(string(ns))) > 0 {
		attrs = append(attrs, semconv.K8SNamespaceName(strings.TrimSpace(string(ns))))
	}
	if d.onEKS() {
		attrs = append(attrs, semconv.CloudProviderAWS, semconv.CloudPlatformAWSEKS)
		if region := d.get("AWS_REGION"); region != "" {
			attrs = append(attrs, semconv.CloudRegion(region))
		}
	}
	return resource.NewWithAttributes(semconv.SchemaURL, attrs...), nil
}

// onEKS reports whether the pod has AWS credentials of EKS: an IRSA web
// identity token (mounted from eks.amazonaws.com) or EKS Pod Identity
// (its agent's link-local address).
func (d *eksDetector) onEKS() bool {
	if strings.Contains(d.get("AWS_WEB_IDENTITY_TOKEN_FILE"), "eks.amazonaws.com") {
		return true
	}
	if u, err := url.Parse(d.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")); err == nil && u.Hostname() == "169.254.170.23" {
		return true
	}
	return false
}
