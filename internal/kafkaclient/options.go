// Package kafkaclient turns the connection part of the configuration
// (KAFKA_BROKERS, KAFKA_CLIENT_ID, KAFKA_TLS*, KAFKA_AUTH and its
// credentials) into franz-go client options: TLS, the SASL mechanisms
// (PLAIN, SCRAM, and MSK IAM over OAUTHBEARER with credentials from the AWS
// default chain or an assumed role), and a tap on every connection that
// counts authentications and turns a broker's refusal into an *AuthError
// naming the principal. Its errors say which failures retrying cannot fix
// (IsFatal) and what to check (Hint).
//
// It builds no consumer group, fetches and commits nothing, and holds no
// state of its own: what a client does once connected (the group, the
// workers, backpressure, commits, the dead-letter producer's settings) is
// internal/consume's, which appends its options to these. Metrics and the
// logger are passed in.
package kafkaclient

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

// Deps is what the options are built with besides the configuration.
type Deps struct {
	// Metrics counts authentications and records the granted session
	// lifetime; nil counts nothing.
	Metrics *metrics.Metrics
	// Logger logs authentications and credential failures; nil logs
	// nothing.
	Logger *zap.Logger
	// SASL, when set, replaces the mechanism KAFKA_AUTH names; the
	// connections still carry the tap, which counts authentications under
	// KAFKA_AUTH and names Principal in errors. It is for brokers that
	// validate other tokens than MSK does, such as Apache Kafka's
	// unsecured JWT validator in the real-broker tests.
	SASL      sasl.Mechanism
	Principal string // who SASL authenticates as, for errors and logs
}

// Options turns the connection part of k into client options: brokers,
// client id, TLS and SASL. It is shared by every client in the binary that
// talks to the cluster (the consumer's short-lived start-up client, the
// group member and its dead-letter producer, and later operator commands), so
// that authentication is configured in one place. It reads files
// (KAFKA_TLS_*) and the AWS configuration but does not connect.
//
// With SASL the connections are dialed here (kgo.Dialer rather than
// kgo.DialTLSConfig, with the same server-name rule), so that each one
// carries the tap that counts authentications and reads the session
// lifetime; see authTap.
func Options(k config.Kafka, d Deps) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(k.Brokers...),
		kgo.ClientID(k.ClientID),
	}
	var tc *tls.Config
	if k.TLS {
		var err error
		if tc, err = TLSConfig(k); err != nil {
			return nil, err
		}
	}
	mech, principal := d.SASL, func() string { return d.Principal }
	if mech == nil {
		var err error
		if mech, principal, err = mechanism(k, d.Logger); err != nil {
			return nil, err
		}
	}
	if mech == nil {
		if tc != nil {
			opts = append(opts, kgo.DialTLSConfig(tc))
		}
		return opts, nil
	}
	tap := newAuthTap(k, principal, d.Metrics, d.Logger)
	return append(opts, kgo.Dialer(dialer(tc, tap)), kgo.SASL(mech)), nil
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
