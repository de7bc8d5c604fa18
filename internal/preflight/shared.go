// Package preflight holds the checks of the cluster and of the service's
// downstreams that are made before consuming: the pieces the service's own
// start-up shares (reading a topic's configuration, refusing a compacted
// dead-letter topic, diagnosing a TLS setting that does not match the
// listener) and the full list of checks `consumer check` runs against the
// real cluster, each reported as one line with what to fix.
//
// It consumes, produces and commits nothing, and keeps no state between
// calls. The service's start-up retries and time limits stay in
// internal/consume; Check makes each check once.
package preflight

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrNoTLS says that a listener accepted a TCP connection but did not
// answer the TLS handshake as a TLS server would.
var ErrNoTLS = errors.New("the listener does not speak TLS")

// ProbeTLS diagnoses brokers that were never reached with TLS on: it dials
// them and starts a TLS handshake. A listener that accepts the connection but
// answers the handshake with something else, or nothing, is a plaintext one
// (a Kafka broker reads the ClientHello as a request and waits for more, or
// closes). It returns nil when it learns nothing.
func ProbeTLS(brokers []string) error {
	for _, addr := range brokers {
		if err := probeTLS(addr, time.Second); err != nil && errors.Is(err, ErrNoTLS) {
			return err
		}
	}
	return nil
}

// probeTLS dials addr and starts a TLS handshake without verifying the
// certificate. It returns nil when the listener speaks TLS, an error
// wrapping ErrNoTLS when it accepted the connection but does not, and the
// dial error otherwise.
func probeTLS(addr string, dial time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, dial)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a probe of the protocol, not of the certificate
	err = tc.Handshake()
	var rh tls.RecordHeaderError
	var ne net.Error
	if err != nil && (errors.As(err, &rh) || errors.Is(err, io.EOF) || (errors.As(err, &ne) && ne.Timeout())) {
		return fmt.Errorf("TLS handshake with %s: %w: %w", addr, ErrNoTLS, err)
	}
	return err
}

// MSKPorts is what each of MSK's listeners speaks.
const MSKPorts = "MSK's ports: 9092 plaintext, 9094 TLS, 9096 SASL/SCRAM over TLS, 9098 IAM over TLS"

// TLSHint diagnoses a KAFKA_TLS setting (tlsOn) that does not match the
// listener, from the last connection error seen (nil: none answered), or
// returns "".
func TLSHint(tlsOn bool, last error) string {
	var rh tls.RecordHeaderError
	switch {
	case tlsOn && (errors.As(last, &rh) || errors.Is(last, ErrNoTLS)):
		return "the broker answered without TLS: KAFKA_TLS=true against a plaintext listener? Set KAFKA_TLS=false or use the TLS port; " + MSKPorts
	case !tlsOn && last != nil && (errors.Is(last, io.EOF) || errors.Is(last, io.ErrUnexpectedEOF) ||
		errors.Is(last, syscall.ECONNRESET)):
		return "the broker closed the connection: a TLS listener reached with KAFKA_TLS=false? " + MSKPorts
	case last == nil:
		return "no broker answered: check KAFKA_BROKERS, the security groups and " + MSKPorts
	}
	var ne net.Error
	if errors.As(last, &ne) || errors.Is(last, syscall.ECONNREFUSED) {
		return "check KAFKA_BROKERS, the network path and " + MSKPorts
	}
	return ""
}

// DescribeConfigsPermission is the MSK IAM action that reading a topic's
// configuration needs.
const DescribeConfigsPermission = "kafka-cluster:DescribeTopicDynamicConfiguration"

// IsDenied reports whether err is a broker's refusal to describe a topic or
// the cluster.
func IsDenied(err error) bool {
	return errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed)
}

// TopicConfig is what the checks read of a topic's configuration.
type TopicConfig struct {
	CleanupPolicy   string // cleanup.policy, "" if not returned
	MaxMessageBytes int32  // max.message.bytes, 0 if not returned
}

// Compacted reports whether the topic's cleanup policy includes compaction.
func (c TopicConfig) Compacted() bool { return strings.Contains(c.CleanupPolicy, "compact") }

// ReadConfigs reads cleanup.policy and max.message.bytes of each topic in
// a DescribeConfigs answer. denied lists the topics whose configuration the
// principal may not read; err is the first other error of a topic (a
// transient one: ask again).
func ReadConfigs(rcs kadm.ResourceConfigs) (configs map[string]TopicConfig, denied []string, err error) {
	configs = map[string]TopicConfig{}
	for _, rc := range rcs {
		if rc.Err != nil {
			if IsDenied(rc.Err) {
				denied = append(denied, rc.Name)
				continue
			}
			return nil, nil, fmt.Errorf("topic %s: %w", rc.Name, rc.Err)
		}
		var tc TopicConfig
		for _, cfg := range rc.Configs {
			if cfg.Value == nil {
				continue
			}
			switch cfg.Key {
			case "cleanup.policy":
				tc.CleanupPolicy = *cfg.Value
			case "max.message.bytes":
				if n, err := strconv.ParseInt(*cfg.Value, 10, 32); err == nil && n > 0 {
					tc.MaxMessageBytes = int32(n)
				}
			}
		}
		configs[rc.Name] = tc
	}
	return configs, denied, nil
}

// CompactedError refuses a compacted dead-letter topic.
type CompactedError struct{ Topic, Policy string }

func (e *CompactedError) Error() string {
	return "cleanup.policy=" + e.Policy + ": a compacted topic rejects records without a key, so the dead-letter copy of a record with a null key could never be written; use cleanup.policy=delete for " + e.Topic
}
