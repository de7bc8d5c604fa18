package consume

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"msk-consumer/config"
)

// ClientOpts turns the connection part of cfg into client options: brokers,
// client id, TLS and SASL. It is shared by everything in the binary that
// talks to the cluster (the consumer, and later operator commands), so that
// authentication is configured in one place.
func ClientOpts(k config.Kafka) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(k.Brokers...),
		kgo.ClientID(k.ClientID),
	}
	if k.TLS {
		tc, err := TLSConfig(k)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch k.Auth {
	case config.AuthNone:
	case config.AuthPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: k.SASLUsername, Pass: k.SASLPassword}.AsMechanism()))
	case config.AuthSCRAMSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: k.SASLUsername, Pass: k.SASLPassword}.AsSha256Mechanism()))
	case config.AuthSCRAMSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: k.SASLUsername, Pass: k.SASLPassword}.AsSha512Mechanism()))
	case config.AuthIAM:
		return nil, fmt.Errorf("KAFKA_AUTH=iam: %w", ErrIAMUnsupported)
	default:
		return nil, fmt.Errorf("KAFKA_AUTH=%q: unknown mechanism", k.Auth)
	}
	return opts, nil
}

// TLSConfig builds the TLS configuration for the brokers: system roots or
// KAFKA_TLS_CA_FILE, an optional client certificate (mTLS), and an optional
// server name override.
func TLSConfig(k config.Kafka) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         k.TLSServerName,
		InsecureSkipVerify: k.TLSInsecureSkipVerify, //nolint:gosec // an explicit operator switch, warned about at start
	}
	if k.TLSCAFile != "" {
		pem, err := os.ReadFile(k.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE %s: no PEM certificates in it", k.TLSCAFile)
		}
		tc.RootCAs = pool
	}
	if k.TLSCertFile != "" || k.TLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(k.TLSCertFile, k.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_TLS_CERT_FILE/KAFKA_TLS_KEY_FILE: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if tc.ServerName == "" && len(k.Brokers) > 0 {
		// kgo sets the server name from each broker's host when it is
		// empty; nothing to do. Validate the first address early so a
		// typo surfaces at start.
		if _, _, err := net.SplitHostPort(k.Brokers[0]); err != nil {
			return nil, fmt.Errorf("KAFKA_BROKERS: %w", err)
		}
	}
	return tc, nil
}
