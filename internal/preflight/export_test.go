package preflight

import (
	"crypto/tls"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/kafkaclient"
)

// TLSConfigForTest is the brokers' TLS configuration as the service builds it.
func TLSConfigForTest(cfg config.Config) (*tls.Config, error) {
	return kafkaclient.TLSConfig(cfg.Kafka)
}
