package consume

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"msk-consumer/config"
	"msk-consumer/internal/metrics"
)

// ClientOpts turns the connection part of cfg into client options: brokers,
// client id, TLS and SASL. It is ClientOptsWith without metrics or logging.
func ClientOpts(k config.Kafka) ([]kgo.Opt, error) {
	return ClientOptsWith(k, nil, nil)
}

// ClientOptsWith turns the connection part of cfg into client options:
// brokers, client id, TLS and SASL. It is shared by everything in the binary
// that talks to the cluster (the consumer, and later operator commands), so
// that authentication is configured in one place. Authentications are
// counted on m and logged on log; either may be nil.
//
// With SASL the connections are dialed here (kgo.Dialer rather than
// kgo.DialTLSConfig, with the same server-name rule), so that each one
// carries the tap that counts authentications and reads the session
// lifetime; see authTap.
func ClientOptsWith(k config.Kafka, m *metrics.Metrics, log *zap.Logger) ([]kgo.Opt, error) {
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
	mech, principal, err := mechanism(k, log)
	if err != nil {
		return nil, err
	}
	if mech == nil {
		if tc != nil {
			opts = append(opts, kgo.DialTLSConfig(tc))
		}
		return opts, nil
	}
	tap := newAuthTap(k, principal, m, log)
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
