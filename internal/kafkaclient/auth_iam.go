package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	signer "github.com/aws/aws-msk-iam-sasl-signer-go/signer"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/config"
)

// How long before their expiry cached AWS credentials are refreshed. A
// token is signed with the credentials of the moment and MSK ends the
// session when they expire, so refreshing early keeps every new session
// (and every re-authentication) well clear of the credentials' end. The
// jitter spreads refreshes of many replicas started together.
const (
	credsExpiryWindow = 5 * time.Minute
	credsExpiryJitter = 0.5
)

// Retrying credentials: IAMGiveUpAfterTries consecutive failures with an
// answer that retrying cannot change are fatal; any other failure is fatal
// once it has lasted IAMGiveUpAfter (with at least IAMGiveUpAfterTries
// tries), so that a short IMDS or STS outage is ridden out but a missing
// credentials source is not retried forever.
const (
	IAMGiveUpAfterTries = 3
	IAMGiveUpAfter      = 2 * time.Minute
)

// iamTokenTimeout bounds getting credentials and signing one token.
const iamTokenTimeout = 30 * time.Second

// permanentCredentialCodes are AWS API error codes (from STS, or from a
// provider that calls it) that mean the credentials or the trust policy are
// wrong, not that the service is unavailable.
var permanentCredentialCodes = map[string]bool{
	"InvalidClientTokenId":        true,
	"SignatureDoesNotMatch":       true,
	"IncompleteSignature":         true,
	"UnrecognizedClientException": true,
	"AccessDenied":                true,
	"AccessDeniedException":       true,
	"ExpiredToken":                true,
	"ExpiredTokenException":       true,
	"InvalidIdentityToken":        true,
	"IDPRejectedClaim":            true,
	"RegionDisabledException":     true,
	"ValidationError":             true,
}

// iamAuth makes MSK IAM tokens: SigV4-presigned kafka-cluster:Connect URLs,
// signed with credentials taken from an aws.CredentialsCache on every call,
// so that every new connection and every re-authentication gets a fresh
// token signed with unexpired credentials.
type iamAuth struct {
	region string
	creds  aws.CredentialsProvider
	role   string // KAFKA_IAM_ROLE_ARN, or empty
	log    *zap.Logger
	now    func() time.Time

	giveUpTries int
	giveUpAfter time.Duration

	mu           sync.Mutex
	failures     int
	failingSince time.Time
	identity     string // the credentials last used: source and access key id, masked
}

// newIAM builds the MSK IAM token source from the AWS default credential
// chain (environment, shared files, web identity/IRSA, ECS task role, IMDS)
// or, with KAFKA_IAM_ROLE_ARN, from that role assumed with a fixed session
// name (KAFKA_IAM_SESSION_NAME), so that CloudTrail and the broker see one
// stable principal. It reads configuration but does not call AWS.
func newIAM(k config.Kafka, log *zap.Logger) (*iamAuth, error) {
	if k.AWSRegion == "" {
		return nil, errors.New("KAFKA_AUTH=iam: AWS_REGION (or AWS_DEFAULT_REGION) is required")
	}
	cacheOpts := func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = credsExpiryWindow
		o.ExpiryWindowJitterFrac = credsExpiryJitter
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(),
		awsconfig.WithRegion(k.AWSRegion),
		awsconfig.WithCredentialsCacheOptions(cacheOpts),
	)
	if err != nil {
		return nil, fmt.Errorf("KAFKA_AUTH=iam: loading the AWS configuration: %w", err)
	}
	creds := cfg.Credentials
	if k.IAMRoleARN != "" {
		name := k.IAMSessionName
		if name == "" {
			name = config.DefaultIAMSessionName
		}
		p := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), k.IAMRoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = name
		})
		creds = aws.NewCredentialsCache(p, cacheOpts)
	}
	if creds == nil {
		return nil, errors.New("KAFKA_AUTH=iam: the AWS configuration has no credentials source")
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &iamAuth{
		region:      k.AWSRegion,
		creds:       creds,
		role:        k.IAMRoleARN,
		log:         log,
		now:         time.Now,
		giveUpTries: IAMGiveUpAfterTries,
		giveUpAfter: IAMGiveUpAfter,
	}, nil
}

// Mechanism returns the OAUTHBEARER mechanism that kgo calls for every
// session.
func (a *iamAuth) Mechanism() sasl.Mechanism { return oauth.Oauth(a.token) }

// Principal describes who authenticates, for error messages and logs: the
// role, or the source and masked access key id of the credentials last
// used. It never contains a secret.
func (a *iamAuth) Principal() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.role != "" && a.identity != "":
		return "role " + a.role + " (" + a.identity + ")"
	case a.role != "":
		return "role " + a.role
	case a.identity != "":
		return a.identity
	}
	return "the AWS default credential chain"
}

func (a *iamAuth) wanted() string {
	if a.role != "" {
		return "assuming role " + a.role
	}
	return "the AWS default credential chain"
}

// token is the oauth callback: it takes credentials from the cache (which
// refreshes them when they near their expiry) and signs a new token.
func (a *iamAuth) token(parent context.Context) (oauth.Auth, error) {
	ctx, cancel := context.WithTimeout(parent, iamTokenTimeout)
	defer cancel()
	creds, err := a.creds.Retrieve(ctx)
	if err == nil && (creds.AccessKeyID == "" || creds.SecretAccessKey == "") {
		err = errEmptyCredentials
	}
	if err != nil && parent.Err() != nil {
		return oauth.Auth{}, err // the client is closing: not a credentials failure
	}
	if err != nil {
		return oauth.Auth{}, a.failed(err)
	}
	tok, _, err := signer.GenerateAuthTokenFromCredentialsProvider(ctx, a.region,
		aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }))
	if err != nil {
		return oauth.Auth{}, a.failed(err)
	}
	a.succeeded(creds)
	return oauth.Auth{Token: tok}, nil
}

func (a *iamAuth) succeeded(creds aws.Credentials) {
	id := describeCreds(creds)
	a.mu.Lock()
	recovered := a.failures
	changed := id != a.identity
	a.failures, a.failingSince, a.identity = 0, time.Time{}, id
	a.mu.Unlock()
	if recovered > 0 {
		a.log.Info("AWS credentials for MSK IAM available again", zap.Int("failures", recovered), zap.String("principal", id))
	} else if changed {
		a.log.Debug("MSK IAM credentials", zap.String("principal", id))
	}
}

func (a *iamAuth) failed(err error) error {
	now := a.now()
	a.mu.Lock()
	a.failures++
	if a.failingSince.IsZero() {
		a.failingSince = now
	}
	n, since := a.failures, a.failingSince
	a.mu.Unlock()
	noSource := noCredentialsSource(err)
	fatal := noSource || n >= a.giveUpTries && (permanentCredentialError(err) || now.Sub(since) >= a.giveUpAfter)
	if !fatal {
		a.log.Warn("cannot get AWS credentials for MSK IAM; the client retries", zap.Int("failures", n), zap.Error(err))
	}
	return &CredentialsError{Principal: a.wanted(), Failures: n, Fatal: fatal, NoSource: noSource, Err: err}
}

// noCredentialsSource reports whether err says that the AWS default
// credential chain found no credentials: every source before the instance
// metadata service (the environment, the shared files, web identity, the
// container endpoint) was unset, and the instance metadata service is off,
// cannot be reached or has no role (404). Retrying cannot change that; an
// instance metadata service that answers 5xx or 429 is retried.
func noCredentialsSource(err error) bool {
	oe, ok := errors.AsType[*smithy.OperationError](err)
	if !ok || oe.ServiceID != imds.ServiceID {
		return false
	}
	if re, ok := errors.AsType[*smithyhttp.ResponseError](err); ok {
		code := re.HTTPStatusCode()
		return code != http.StatusTooManyRequests && code < 500
	}
	return true
}

// permanentCredentialError reports whether retrying cannot change err.
func permanentCredentialError(err error) bool {
	if errors.Is(err, errEmptyCredentials) {
		return true
	}
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		return permanentCredentialCodes[ae.ErrorCode()]
	}
	return false
}

// describeCreds names credentials without giving them away: the provider
// that produced them and the access key id with all but its first and last
// four characters masked (the prefix tells long-term AKIA keys from
// temporary ASIA ones).
func describeCreds(c aws.Credentials) string {
	id := c.AccessKeyID
	if len(id) > 8 {
		id = id[:4] + "…" + id[len(id)-4:]
	} else {
		id = "…"
	}
	src := c.Source
	if src == "" {
		src = "AWS credentials"
	}
	return src + " access key " + id
}
