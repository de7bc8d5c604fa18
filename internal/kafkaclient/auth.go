package kafkaclient

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

// The kinds of authentication counted in consumer_kafka_auth_total.
const (
	authKindAuthenticate   = metrics.AuthKindAuthenticate
	authKindReauthenticate = metrics.AuthKindReauthenticate
)

// dialTimeout is kgo's default; a custom dialer must set its own.
const dialTimeout = 10 * time.Second

// mechanism returns the SASL mechanism for KAFKA_AUTH and a function that
// describes the principal, or a nil mechanism for KAFKA_AUTH=none.
func mechanism(k config.Kafka, log *zap.Logger) (sasl.Mechanism, func() string, error) {
	user := func() string { return "user " + k.SASLUsername }
	switch k.Auth {
	case config.AuthNone:
		return nil, nil, nil
	case config.AuthPlain:
		return plain.Auth{User: k.SASLUsername, Pass: k.SASLPassword}.AsMechanism(), user, nil
	case config.AuthSCRAMSHA256:
		return scram.Auth{User: k.SASLUsername, Pass: k.SASLPassword}.AsSha256Mechanism(), user, nil
	case config.AuthSCRAMSHA512:
		return scram.Auth{User: k.SASLUsername, Pass: k.SASLPassword}.AsSha512Mechanism(), user, nil
	case config.AuthIAM:
		a, err := newIAM(k, log)
		if err != nil {
			return nil, nil, err
		}
		return a.Mechanism(), a.Principal, nil
	}
	return nil, nil, errors.New("KAFKA_AUTH=" + string(k.Auth) + ": unknown mechanism")
}

// authSteps is how many successful SASLAuthenticate round trips complete an
// authentication with a.
func authSteps(a config.Auth) int {
	if a == config.AuthSCRAMSHA256 || a == config.AuthSCRAMSHA512 {
		return 2
	}
	return 1
}

// dialer dials brokers (over TLS when tc is set, with the broker's host as
// the server name unless KAFKA_TLS_SERVER_NAME overrides it, as
// kgo.DialTLSConfig does) and puts tap on every connection.
func dialer(tc *tls.Config, tap *authTap) func(ctx context.Context, network, host string) (net.Conn, error) {
	nd := &net.Dialer{Timeout: dialTimeout}
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		var conn net.Conn
		var err error
		if tc != nil {
			cfg := tc.Clone()
			if cfg.ServerName == "" {
				h, _, serr := net.SplitHostPort(host)
				if serr != nil {
					return nil, serr
				}
				cfg.ServerName = h
			}
			conn, err = (&tls.Dialer{NetDialer: nd, Config: cfg}).DialContext(ctx, network, host)
		} else {
			conn, err = nd.DialContext(ctx, network, host)
		}
		if err != nil {
			return nil, err
		}
		return tap.wrap(conn, host), nil
	}
}

// authTap watches the SASL exchange on each broker connection. kgo does not
// report authentications, their outcome, or the session lifetime the broker
// grants (SessionLifetimeMs in the SASLAuthenticate response, which drives
// KIP-368 re-authentication) to hooks, so the tap reads them off the wire:
// it notes the correlation ids of the SASLHandshake and SASLAuthenticate
// requests the client writes and decodes those responses (and only those;
// every other byte passes through untouched). It counts each
// authentication by outcome, records the granted lifetime, and turns a
// broker's refusal into an *AuthError that names the principal, which kgo
// then returns in place of the bare error code.
type authTap struct {
	auth      config.Auth
	steps     int
	principal func() string
	metrics   *metrics.Metrics // nil: count nothing
	log       *zap.Logger
}

func newAuthTap(k config.Kafka, principal func() string, m *metrics.Metrics, log *zap.Logger) *authTap {
	if log == nil {
		log = zap.NewNop()
	}
	t := &authTap{auth: k.Auth, steps: authSteps(k.Auth), principal: principal, metrics: m, log: log}
	if m != nil {
		// The series exist from the start, so that alerts on rate()
		// see a zero rather than nothing.
		for _, kind := range []string{authKindAuthenticate, authKindReauthenticate} {
			for _, outcome := range []string{metrics.OutcomeOK, metrics.OutcomeError} {
				m.KafkaAuth.WithLabelValues(string(k.Auth), kind, outcome)
			}
		}
		m.KafkaAuthSessionLifetime.WithLabelValues(string(k.Auth))
	}
	return t
}

func (t *authTap) wrap(c net.Conn, addr string) net.Conn {
	return &tapConn{Conn: c, t: t, addr: addr, pending: make(map[int32]saslReq)}
}

// done records the end of one authentication.
func (t *authTap) done(addr string, reauth bool, lifetime time.Duration, err error) {
	kind := authKindAuthenticate
	if reauth {
		kind = authKindReauthenticate
	}
	outcome := metrics.OutcomeOK
	if err != nil {
		outcome = metrics.OutcomeError
	}
	if t.metrics != nil {
		t.metrics.KafkaAuth.WithLabelValues(string(t.auth), kind, outcome).Inc()
		if err == nil {
			t.metrics.KafkaAuthSessionLifetime.WithLabelValues(string(t.auth)).Set(lifetime.Seconds())
		}
	}
	if err != nil {
		t.log.Warn("Kafka authentication failed", zap.String("broker", addr), zap.String("kind", kind),
			zap.String("auth", string(t.auth)), zap.String("principal", t.principal()), zap.Error(err))
		return
	}
	t.log.Debug("Kafka authentication succeeded", zap.String("broker", addr), zap.String("kind", kind),
		zap.String("auth", string(t.auth)), zap.Duration("session_lifetime", lifetime))
}

type saslReq struct{ key, version int16 }

// maxSASLResponse bounds what the tap buffers of one SASL response; real
// ones are a few hundred bytes.
const maxSASLResponse = 1 << 20

type tapConn struct {
	net.Conn
	t    *authTap
	addr string

	mu       sync.Mutex
	pending  map[int32]saslReq // correlation id → SASL request awaiting its response
	auths    int               // authentications begun on this connection
	inAuth   bool              // an authentication has begun and not ended
	okSteps  int               // successful SASLAuthenticate responses in it
	lifetime time.Duration     // the lifetime the broker granted in it

	// The read side: only kgo's single reader of the connection uses
	// these.
	hdr     [8]byte // size and correlation id of the response being read
	nhdr    int
	inBody  bool
	left    int      // bytes of the current response body not yet read
	capture *saslReq // the SASL request the current response answers, if any
	body    []byte
}

// Write notes SASL requests. kgo writes one whole request per call.
func (c *tapConn) Write(b []byte) (int, error) {
	if len(b) >= 12 {
		key := int16(binary.BigEndian.Uint16(b[4:]))
		version := int16(binary.BigEndian.Uint16(b[6:]))
		corr := int32(binary.BigEndian.Uint32(b[8:]))
		switch key {
		case kmsg.SASLHandshake.Int16():
			c.mu.Lock()
			c.auths++
			c.inAuth, c.okSteps, c.lifetime = true, 0, 0
			c.pending[corr] = saslReq{key, version}
			c.mu.Unlock()
		case kmsg.SASLAuthenticate.Int16():
			c.mu.Lock()
			c.pending[corr] = saslReq{key, version}
			c.mu.Unlock()
		}
	}
	return c.Conn.Write(b)
}

// Read passes responses through, decoding those to SASL requests. A refused
// authentication is returned as an *AuthError instead of its bytes; kgo
// would fail the connection on the error code anyway.
func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if aerr := c.observe(p[:n]); aerr != nil {
			return 0, aerr
		}
	}
	return n, err
}

// Close counts an authentication that was still going as failed.
func (c *tapConn) Close() error {
	c.mu.Lock()
	open, reauth := c.inAuth, c.auths > 1
	c.inAuth = false
	c.mu.Unlock()
	if open {
		c.t.done(c.addr, reauth, 0, errClosedDuringAuth)
	}
	return c.Conn.Close()
}

func (c *tapConn) observe(b []byte) error {
	for len(b) > 0 {
		if !c.inBody {
			k := copy(c.hdr[c.nhdr:], b)
			c.nhdr += k
			b = b[k:]
			if c.nhdr < len(c.hdr) {
				return nil
			}
			c.nhdr = 0
			size := int32(binary.BigEndian.Uint32(c.hdr[:4]))
			corr := int32(binary.BigEndian.Uint32(c.hdr[4:]))
			c.inBody, c.left, c.capture, c.body = true, max(int(size)-4, 0), nil, c.body[:0]
			c.mu.Lock()
			if r, ok := c.pending[corr]; ok {
				delete(c.pending, corr)
				if c.left <= maxSASLResponse {
					c.capture = &r
				}
			}
			c.mu.Unlock()
		}
		k := min(len(b), c.left)
		if c.capture != nil {
			c.body = append(c.body, b[:k]...)
		}
		c.left -= k
		b = b[k:]
		if c.left == 0 {
			c.inBody = false
			if r := c.capture; r != nil {
				c.capture = nil
				if err := c.response(*r, c.body); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// response handles a complete SASL response body (after the correlation
// id).
func (c *tapConn) response(r saslReq, body []byte) error {
	var code int16
	var msg *string
	var lifetimeMs int64
	switch r.key {
	case kmsg.SASLHandshake.Int16():
		resp := kmsg.NewPtrSASLHandshakeResponse()
		resp.Version = r.version
		if resp.ReadFrom(body) != nil {
			return nil
		}
		code = resp.ErrorCode
	case kmsg.SASLAuthenticate.Int16():
		resp := kmsg.NewPtrSASLAuthenticateResponse()
		resp.Version = r.version
		if resp.IsFlexible() {
			rd := kbin.Reader{Src: body}
			kmsg.SkipTags(&rd)
			if rd.Complete() != nil {
				return nil
			}
			body = rd.Src
		}
		if resp.ReadFrom(body) != nil {
			return nil
		}
		code, msg, lifetimeMs = resp.ErrorCode, resp.ErrorMessage, resp.SessionLifetimeMillis
	}
	c.mu.Lock()
	if !c.inAuth {
		c.mu.Unlock()
		return nil
	}
	reauth := c.auths > 1
	if code != 0 {
		c.inAuth = false
		c.mu.Unlock()
		err := kerr.ErrorForCode(code)
		if msg != nil && *msg != "" {
			err = &brokerMessageError{err: err, msg: *msg}
		}
		c.t.done(c.addr, reauth, 0, err)
		return &AuthError{Auth: c.t.auth, Principal: c.t.principal(), Reauth: reauth, Broker: c.addr, Err: err}
	}
	if r.key != kmsg.SASLAuthenticate.Int16() {
		c.mu.Unlock()
		return nil
	}
	c.okSteps++
	c.lifetime = time.Duration(lifetimeMs) * time.Millisecond
	finished := c.okSteps >= c.t.steps
	if finished {
		c.inAuth = false
	}
	lifetime := c.lifetime
	c.mu.Unlock()
	if finished {
		c.t.done(c.addr, reauth, lifetime, nil)
	}
	return nil
}
