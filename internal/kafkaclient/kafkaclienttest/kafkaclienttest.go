// Package kafkaclienttest is what tests need to exercise the connections
// internal/kafkaclient configures without AWS or MSK: a throwaway PKI for
// TLS listeners, a kfake cluster that verifies MSK IAM tokens as MSK does
// (SigV4 recomputed from the known secret), a fake STS for role assumption,
// an AWS environment with nothing in it but what the test sets, and a
// capture of everything a test printed, to check that no secret was.
//
// It is imported only by tests (of internal/kafkaclient and of the packages
// that build clients with it); it configures no client itself.
package kafkaclienttest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Test credentials. None is real.
const (
	Region    = "eu-west-1"
	KeyID     = "AKIATESTKEY0000EXAMPLE"
	Secret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYTESTSECRETKEY"
	BadSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGSECRETKY"

	// RoleARN is the role the STS fake lets assume, with these
	// temporary credentials.
	RoleARN    = "arn:aws:iam::123456789012:role/consumer"
	STSKeyID   = "ASIATEMPKEY00000ROLE"
	STSSecret  = "temporarySecretForTheAssumedRole0000000000"
	STSSession = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN//////////wEaDTESTONLY"
)

// PKI is a CA with a server certificate for 127.0.0.1, localhost and
// broker.test, and a client certificate, written as PEM files for the
// KAFKA_TLS_* variables.
type PKI struct {
	CAFile, CertFile, KeyFile string
	server                    tls.Certificate
	pool                      *x509.CertPool
}

// NewPKI makes a PKI in a temporary directory of t.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "msk-consumer test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) ([]byte, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			DNSNames:     []string{"localhost", "broker.test"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	p := &PKI{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "client.pem"),
		KeyFile:  filepath.Join(dir, "client-key.pem"),
		pool:     x509.NewCertPool(),
	}
	p.pool.AddCert(ca)
	write := func(name string, b []byte) {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(p.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	scert, skey := leaf(2, "broker", x509.ExtKeyUsageServerAuth)
	if p.server, err = tls.X509KeyPair(scert, skey); err != nil {
		t.Fatal(err)
	}
	ccert, ckey := leaf(3, "consumer", x509.ExtKeyUsageClientAuth)
	write(p.CertFile, ccert)
	write(p.KeyFile, ckey)
	return p
}

// ServerTLS is the brokers' TLS listener configuration; with mtls it
// requires and verifies a client certificate signed by the test CA.
func (p *PKI) ServerTLS(mtls bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	if mtls {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = p.pool
	}
	return c
}

// IAMBroker makes a kfake cluster authenticate SASL/OAUTHBEARER the way
// MSK's IAM listener does: the bearer token is a base64url SigV4-presigned
// URL for kafka-cluster:Connect, which it verifies against the secret of
// the access key id it names. A bad token is refused with
// SASL_AUTHENTICATION_FAILED; a good one gets SessionLifetimeMs.
type IAMBroker struct {
	region   string
	lifetime time.Duration
	now      func() time.Time

	mu       sync.Mutex
	secrets  map[string]string // access key id → secret access key
	tokens   map[string]string // session tokens that must come with an access key id
	ok, fail int
	seen     []string // tokens received, to check that none was logged
	lastErr  error
}

// NewIAMBroker verifies tokens for region and grants sessions of lifetime
// (0: none). It knows no access key until Allow.
func NewIAMBroker(region string, lifetime time.Duration) *IAMBroker {
	return &IAMBroker{region: region, lifetime: lifetime, now: time.Now, secrets: map[string]string{}, tokens: map[string]string{}}
}

// Allow accepts tokens signed with keyID and secret, and with sessionToken
// when it is not empty.
func (b *IAMBroker) Allow(keyID, secret, sessionToken string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.secrets[keyID] = secret
	if sessionToken != "" {
		b.tokens[keyID] = sessionToken
	}
}

// Counts returns how many tokens were accepted and refused.
func (b *IAMBroker) Counts() (ok, fail int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ok, b.fail
}

// Revoke stops accepting tokens signed with keyID, as when an access key is
// deactivated or a role loses kafka-cluster:Connect.
func (b *IAMBroker) Revoke(keyID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.secrets, keyID)
}

// Tokens returns every token received, to check that none was printed.
func (b *IAMBroker) Tokens() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.seen)
}

// LastErr is why the last refused token was refused.
func (b *IAMBroker) LastErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastErr
}

// Install makes c authenticate SASL/OAUTHBEARER with b, and offer no other
// mechanism.
func (b *IAMBroker) Install(c *kfake.Cluster) {
	c.ControlKey(kmsg.SASLHandshake.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.SASLHandshakeRequest)
		resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.SupportedMechanisms = []string{"OAUTHBEARER"}
		if req.Mechanism != "OAUTHBEARER" {
			resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		}
		return resp, nil, true
	})
	c.ControlKey(kmsg.SASLAuthenticate.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.SASLAuthenticateRequest)
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		err := b.verify(req.SASLAuthBytes)
		b.mu.Lock()
		if err != nil {
			b.fail++
			b.lastErr = err
		} else {
			b.ok++
		}
		b.mu.Unlock()
		if err != nil {
			resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
			msg := "[test-broker] Access denied"
			resp.ErrorMessage = &msg
			return resp, nil, true
		}
		resp.SessionLifetimeMillis = b.lifetime.Milliseconds()
		return resp, nil, true
	})
}

// verify checks an OAUTHBEARER client-first message (RFC 7628) carrying an
// MSK IAM token.
func (b *IAMBroker) verify(msg []byte) error {
	// gs2-header "n,," (no channel binding, no authzid), then
	// \x01-separated key=value pairs, ending with \x01\x01.
	rest, ok := bytes.CutPrefix(msg, []byte("n,"))
	if !ok {
		return errors.New("no gs2 header")
	}
	i := bytes.IndexByte(rest, ',')
	if i < 0 {
		return errors.New("bad gs2 header")
	}
	rest = rest[i+1:]
	if !bytes.HasPrefix(rest, []byte{1}) || !bytes.HasSuffix(rest, []byte{1, 1}) {
		return errors.New("bad kvsep framing")
	}
	var token string
	for _, kv := range strings.Split(string(rest[1:len(rest)-2]), "\x01") {
		if v, ok := strings.CutPrefix(kv, "auth=Bearer "); ok {
			token = v
		}
	}
	if token == "" {
		return errors.New("no bearer token")
	}
	b.mu.Lock()
	b.seen = append(b.seen, token)
	b.mu.Unlock()
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return fmt.Errorf("token is not base64url: %w", err)
	}
	u, err := url.Parse(string(raw))
	if err != nil {
		return err
	}
	q := u.Query()
	if u.Scheme != "https" || u.Host != "kafka."+b.region+".amazonaws.com" || u.Path != "/" {
		return fmt.Errorf("unexpected URL %s://%s%s", u.Scheme, u.Host, u.Path)
	}
	if q.Get("Action") != "kafka-cluster:Connect" {
		return fmt.Errorf("Action=%q", q.Get("Action"))
	}
	if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" || q.Get("X-Amz-SignedHeaders") != "host" {
		return errors.New("unexpected algorithm or signed headers")
	}
	scope := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(scope) != 5 || scope[2] != b.region || scope[3] != "kafka-cluster" || scope[4] != "aws4_request" {
		return fmt.Errorf("bad credential scope %q", q.Get("X-Amz-Credential"))
	}
	signed, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		return err
	}
	if scope[1] != signed.Format("20060102") {
		return errors.New("credential scope date is not the signing date")
	}
	expires, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || expires <= 0 || expires > 900 {
		return fmt.Errorf("bad X-Amz-Expires %q", q.Get("X-Amz-Expires"))
	}
	now := b.now()
	if now.After(signed.Add(time.Duration(expires)*time.Second)) || signed.After(now.Add(5*time.Minute)) {
		return errors.New("token expired or signed in the future")
	}
	b.mu.Lock()
	secret, known := b.secrets[scope[0]]
	wantSession := b.tokens[scope[0]]
	b.mu.Unlock()
	if !known {
		return errors.New("unknown access key id")
	}
	if q.Get("X-Amz-Security-Token") != wantSession {
		return errors.New("wrong or missing security token")
	}
	// SigV4 for a presigned GET: every query parameter but the signature
	// (and the User-Agent the signer appends after signing) is signed.
	var keys []string
	for k := range q {
		if k != "X-Amz-Signature" && k != "User-Agent" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var cq []string
	for _, k := range keys {
		cq = append(cq, sigv4Escape(k)+"="+sigv4Escape(q.Get(k)))
	}
	emptyHash := sha256.Sum256(nil)
	creq := strings.Join([]string{"GET", "/", strings.Join(cq, "&"), "host:" + u.Host + "\n", "host", hex.EncodeToString(emptyHash[:])}, "\n")
	creqHash := sha256.Sum256([]byte(creq))
	sts := strings.Join([]string{"AWS4-HMAC-SHA256", q.Get("X-Amz-Date"), strings.Join(scope[1:], "/"), hex.EncodeToString(creqHash[:])}, "\n")
	mac := func(key []byte, s string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(s))
		return h.Sum(nil)
	}
	key := mac([]byte("AWS4"+secret), scope[1])
	key = mac(key, scope[2])
	key = mac(key, scope[3])
	key = mac(key, scope[4])
	want := hex.EncodeToString(mac(key, sts))
	if !hmac.Equal([]byte(want), []byte(q.Get("X-Amz-Signature"))) {
		return errors.New("signature does not match")
	}
	return nil
}

// sigv4Escape is SigV4's URI encoding: everything but unreserved characters
// percent-encoded, in upper case.
func sigv4Escape(s string) string {
	var sb strings.Builder
	for _, c := range []byte(s) {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}

// StartCluster starts a one-broker kfake cluster with a TLS listener
// (plaintext if tc is nil), topic with three partitions and dlq with one,
// closed when the test ends.
func StartCluster(t testing.TB, tc *tls.Config, topic, dlq string, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	all := append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, topic), kfake.SeedTopics(1, dlq)}, opts...)
	if tc != nil {
		all = append(all, kfake.TLS(tc))
	}
	c, err := kfake.NewCluster(all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}
