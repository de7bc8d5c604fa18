package builtin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/mskevent"
)

// Invoker is the part of the Lambda client the lambda handler uses;
// *lambda.Client implements it.
type Invoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, optFns ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// Lambda invokes an AWS Lambda function with each batch as the MSK event
// source mapping's event, synchronously, and reads the outcome from the
// answer, as "Lambda functions as handlers" of the operator contract says.
// It is safe for concurrent use.
type Lambda struct {
	function string
	timeout  time.Duration
	client   Invoker
	enc      *mskevent.Encoder
	limit    int
	logger   *zap.Logger
	bufs     sync.Pool // of *[]byte, events
	invokes  *prometheus.CounterVec
}

// LambdaOption changes how NewLambda builds the handler.
type LambdaOption func(*lambdaOptions)

type lambdaOptions struct {
	reg      prometheus.Registerer
	client   Invoker
	clientFn []func(*lambda.Options)
	limit    int
}

// WithRegisterer registers the handler's metric with reg:
// consumer_lambda_invocations_total{function, outcome}, outcome one of ok,
// item_failures, invalid_answer, function_error, throttled,
// misconfigured, unavailable, rejected.
func WithRegisterer(reg prometheus.Registerer) LambdaOption {
	return func(o *lambdaOptions) { o.reg = reg }
}

// WithInvoker makes the handler invoke through c instead of a Lambda
// client built from the AWS SDK's default configuration.
func WithInvoker(c Invoker) LambdaOption { return func(o *lambdaOptions) { o.client = c } }

// WithLambdaOptions changes the Lambda client's options, such as its
// BaseEndpoint or HTTPClient.
func WithLambdaOptions(fns ...func(*lambda.Options)) LambdaOption {
	return func(o *lambdaOptions) { o.clientFn = append(o.clientFn, fns...) }
}

// WithRequestLimit lowers the largest event sent, in bytes, from Lambda's
// 6 MB (mskevent.MaxRequestBytes); for tests.
func WithRequestLimit(n int) LambdaOption { return func(o *lambdaOptions) { o.limit = n } }

// NewLambda returns a handler invoking cfg.LambdaFunction, each invocation
// limited to cfg.LambdaTimeout (15m when zero), with events of
// cfg.EventRecordFormat describing src. It reads the AWS SDK's default
// configuration (credentials chain, AWS_REGION or src.AWSRegion, endpoint
// settings such as AWS_ENDPOINT_URL_LAMBDA) but connects to nothing.
func NewLambda(cfg config.Handler, src config.EventSource, logger *zap.Logger, opts ...LambdaOption) (*Lambda, error) {
	if cfg.LambdaFunction == "" {
		return nil, errors.New("lambda handler: LAMBDA_FUNCTION_NAME is required with HANDLER=lambda")
	}
	var o lambdaOptions
	for _, f := range opts {
		f(&o)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	timeout := cfg.LambdaTimeout
	if timeout <= 0 {
		timeout = config.DefaultLambdaInvokeTimeout
	}
	if o.limit <= 0 || o.limit > mskevent.MaxRequestBytes {
		o.limit = mskevent.MaxRequestBytes
	}
	client := o.client
	if client == nil {
		var lo []func(*awsconfig.LoadOptions) error
		if src.AWSRegion != "" {
			lo = append(lo, awsconfig.WithRegion(src.AWSRegion))
		}
		ac, err := awsconfig.LoadDefaultConfig(context.Background(), lo...)
		if err != nil {
			return nil, fmt.Errorf("lambda handler: AWS configuration: %w", err)
		}
		if ac.Credentials != nil {
			ac.Credentials = credentialsMarker{ac.Credentials}
		}
		fns := append([]func(*lambda.Options){func(lo *lambda.Options) {
			// One request per attempt: the consumer retries an
			// unavailable function with its own capped backoff, and
			// counts every throttle.
			lo.RetryMaxAttempts = 1
			lo.HTTPClient = newHTTPClient(timeout)
		}}, o.clientFn...)
		client = lambda.NewFromConfig(ac, fns...)
	}
	format := mskevent.FormatSource
	if cfg.EventRecordFormat == config.RecordJSON {
		format = mskevent.FormatJSON
	}
	h := &Lambda{
		function: cfg.LambdaFunction,
		timeout:  timeout,
		client:   client,
		enc:      newEncoder(cfg, src, format),
		limit:    o.limit,
		logger:   logger,
	}
	h.bufs.New = func() any {
		b := make([]byte, 0, initialBodyCap)
		return &b
	}
	h.invokes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "consumer_lambda_invocations_total",
		Help: "Invocations of the handler's Lambda function, by outcome.",
	}, []string{"function", "outcome"})
	if o.reg != nil {
		if err := o.reg.Register(h.invokes); err != nil {
			return nil, fmt.Errorf("lambda handler: metrics: %w", err)
		}
	}
	return h, nil
}

// count counts an invocation's outcome.
func (h *Lambda) count(outcome string) {
	h.invokes.WithLabelValues(h.function, outcome).Inc()
}

func newEncoder(cfg config.Handler, src config.EventSource, format mskevent.RecordFormat) *mskevent.Encoder {
	return mskevent.New(mskevent.Options{
		ClusterARN:       cfg.KafkaClusterARN,
		BootstrapServers: src.Brokers,
		Format:           format,
		KeyRegistry:      src.KeyRegistry, ValueRegistry: src.ValueRegistry,
		KeyFormat: src.KeyFormat, ValueFormat: src.ValueFormat,
	})
}

// Handle invokes the function with b and returns what the answer means:
//
//   - nil or *ItemFailures for an answer with batchItemFailures or none;
//   - an error wrapping ErrInvalidResponse for an answer it cannot
//     understand, and a *mskevent.FunctionError for a function error: the
//     batch failed (retried, then bisected);
//   - Unavailable for throttling, Lambda's service and capacity errors, a
//     network error, no answer within LAMBDA_INVOKE_TIMEOUT, and for
//     access, missing function, KMS and credentials errors (a
//     *LambdaError with Misconfigured set);
//   - Permanent for a batch Lambda refused for its content, and for a
//     single record whose event cannot fit in Lambda's 6 MB.
//
// A batch whose event would exceed 6 MB is cut into as many invocations
// as it needs, one after the other; a batch holding a record that cannot
// fit alone is rejected before anything is invoked, so that bisecting it
// leaves that record alone. When ctx ends first the error wraps its cause.
func (h *Lambda) Handle(ctx context.Context, b handler.Batch) error {
	if len(b.Records) == 0 {
		return nil
	}
	bp := h.bufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBody {
			*bp = (*bp)[:0]
			h.bufs.Put(bp)
		}
	}()
	buf, n := h.enc.Append((*bp)[:0], b.Topic, b.Partition, b.Records, h.limit)
	*bp = buf
	if n == len(b.Records) {
		return h.invoke(ctx, &b, b.Records, buf)
	}
	// Too large for one invocation. A record that cannot fit alone must
	// not be sent with the others, nor make them be sent twice.
	for i := range b.Records {
		if size := h.enc.Size(b.Topic, b.Partition, &b.Records[i]); size > h.limit {
			err := fmt.Errorf("lambda handler: the event of the record at offset %d is %d bytes, over Lambda's request limit of %d bytes: it cannot be invoked",
				b.Records[i].Raw.Offset, size, h.limit)
			return handler.Permanent(err)
		}
	}
	var failed []int64
	var itemErr error
	rest := b.Records
	for len(rest) > 0 {
		buf, n = h.enc.Append((*bp)[:0], b.Topic, b.Partition, rest, h.limit)
		*bp = buf
		err := h.invoke(ctx, &b, rest[:n], buf)
		if cls, items := handler.Classify(err); cls == handler.ClassItems {
			failed = append(failed, items.Offsets...)
			itemErr = items.Err
		} else if err != nil {
			return err
		}
		rest = rest[n:]
	}
	if len(failed) == 0 {
		return nil
	}
	return &handler.ItemFailures{Offsets: failed, Err: itemErr}
}

// invoke sends one event, of recs, and reads its answer.
func (h *Lambda) invoke(ctx context.Context, b *handler.Batch, recs []handler.Record, event []byte) error {
	reqCtx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	span := trace.SpanFromContext(ctx)
	out, err := h.client.Invoke(reqCtx, &lambda.InvokeInput{
		FunctionName:   aws.String(h.function),
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        event,
	})
	if err != nil {
		err = h.invokeError(ctx, err)
		le, ok := errors.AsType[*LambdaError](err)
		switch {
		case !ok:
			// The caller gave up: not an outcome of the function.
		case le.Throttled:
			h.count("throttled")
		case le.Misconfigured:
			h.count("misconfigured")
		case errors.Is(err, handler.ErrPermanent):
			h.count("rejected")
		default:
			h.count("unavailable")
		}
		if ok && span.IsRecording() {
			span.SetAttributes(attribute.String("aws.lambda.error_code", le.Code),
				attribute.Bool("aws.lambda.throttled", le.Throttled))
		}
		return err
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.String("faas.invoked_name", h.function),
			attribute.Int("aws.lambda.request_bytes", len(event)))
	}
	if out.FunctionError != nil {
		h.count("function_error")
		fe := mskevent.ParseFunctionError(h.function, *out.FunctionError, out.Payload)
		if span.IsRecording() {
			span.SetAttributes(attribute.String("aws.lambda.function_error", fe.Kind))
		}
		return fe
	}
	offsets, invalid := mskevent.ParseAnswer(b.Topic, b.Partition, recs, out.Payload)
	if invalid != "" {
		h.count("invalid_answer")
		h.logger.Warn("lambda handler: the function's answer is not a valid batch response; the whole batch failed",
			zap.String("function", h.function), zap.String("reason", invalid))
		return fmt.Errorf("lambda function %s: %s: %w", h.function, invalid, ErrInvalidResponse)
	}
	if len(offsets) == 0 {
		h.count("ok")
		return nil
	}
	h.count("item_failures")
	return &handler.ItemFailures{
		Offsets: offsets,
		Err:     fmt.Errorf("lambda function %s reported %d of %d records failed", h.function, len(offsets), len(recs)),
	}
}

// LambdaError is an Invoke that Lambda (or the way to it) refused or could
// not answer. The lambda handler returns it wrapped with Unavailable,
// except for the codes that reject the request's content
// (RequestTooLargeException, InvalidRequestContentException), wrapped
// with Permanent.
type LambdaError struct {
	// Function is the function's name as configured.
	Function string
	// Code is the error code Lambda answered with, such as
	// TooManyRequestsException; empty without an answer.
	Code string
	// StatusCode is the HTTP status of the answer; 0 without one.
	StatusCode int
	// Throttled is set for throttling (TooManyRequestsException or 429).
	Throttled bool
	// Misconfigured is set for what only the operator can fix: access
	// denied, no such function, KMS and credentials errors.
	Misconfigured bool
	// Err is the SDK's error.
	Err error
}

func (e *LambdaError) Error() string {
	s := "lambda function " + e.Function + ": invoke: "
	if e.Misconfigured {
		s += "misconfiguration (fix the function name, its permissions or the credentials): "
	} else if e.Throttled {
		s += "throttled: "
	}
	if e.StatusCode != 0 {
		s += "status " + strconv.Itoa(e.StatusCode) + ": "
	}
	return s + e.Err.Error()
}

func (e *LambdaError) Unwrap() error { return e.Err }

// misconfigCodes are the error codes only the operator can fix.
var misconfigCodes = map[string]bool{
	"AccessDeniedException":          true,
	"ResourceNotFoundException":      true,
	"KMSAccessDeniedException":       true,
	"KMSDisabledException":           true,
	"KMSInvalidStateException":       true,
	"KMSNotFoundException":           true,
	"UnrecognizedClientException":    true,
	"InvalidSignatureException":      true,
	"ExpiredTokenException":          true,
	"InvalidClientTokenId":           true,
	"SignatureDoesNotMatch":          true,
	"AccessDenied":                   true,
	"InvalidParameterValueException": true,
	"InvalidSecurityToken":           true,
}

// rejectedCodes are the error codes that reject the request's content
// (Lambda answers an event over its limit with 413 and
// RequestEntityTooLargeException; an HTTP 413 is taken as that too).
var rejectedCodes = map[string]bool{
	"RequestTooLargeException":       true,
	"RequestEntityTooLargeException": true,
	"InvalidRequestContentException": true,
}

// invokeError classifies an Invoke error by the SDK's error types and
// codes, never by its text.
func (h *Lambda) invokeError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("lambda function %s: invoke: %w", h.function, context.Cause(ctx))
	}
	le := &LambdaError{Function: h.function, Err: err}
	if re, ok := errors.AsType[*smithyhttp.ResponseError](err); ok {
		le.StatusCode = re.HTTPStatusCode()
	}
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		le.Code = ae.ErrorCode()
	}
	switch {
	case errors.Is(err, errCredentials):
		le.Misconfigured = true
	case le.Code == "TooManyRequestsException", le.StatusCode == http.StatusTooManyRequests:
		le.Throttled = true
	case misconfigCodes[le.Code]:
		le.Misconfigured = true
	case rejectedCodes[le.Code], le.StatusCode == http.StatusRequestEntityTooLarge:
		return handler.Permanent(le)
	case le.StatusCode == http.StatusUnauthorized, le.StatusCode == http.StatusForbidden, le.StatusCode == http.StatusNotFound:
		le.Misconfigured = true
	case le.StatusCode == 0 && errors.Is(err, context.DeadlineExceeded):
		le.Err = fmt.Errorf("no answer within LAMBDA_INVOKE_TIMEOUT (%s): %w", h.timeout, err)
	}
	if le.Misconfigured {
		h.logger.Error("lambda handler: the function cannot be invoked as configured; the partition waits",
			zap.String("function", h.function), zap.String("code", le.Code), zap.Int("status", le.StatusCode), zap.Error(err))
	}
	return handler.Unavailable(le)
}

// errCredentials is wrapped by the errors of credentialsMarker.
var errCredentials = errors.New("AWS credentials")

// credentialsMarker marks the errors of the credentials provider, so that
// the handler tells them apart from network errors by type.
type credentialsMarker struct{ aws.CredentialsProvider }

func (m credentialsMarker) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := m.CredentialsProvider.Retrieve(ctx)
	if err != nil && ctx.Err() == nil {
		return c, fmt.Errorf("%w: %w", errCredentials, err)
	}
	return c, err
}

// DryRun calls Invoke with InvocationType DryRun: the function exists and
// the service's credentials may invoke it. It is what `consumer check`
// verifies for HANDLER=lambda; the error is a *LambdaError (Misconfigured
// for access, missing function or credentials) wrapped as Handle wraps it.
func (h *Lambda) DryRun(ctx context.Context) error {
	reqCtx, cancel := context.WithTimeout(ctx, min(h.timeout, 30*time.Second))
	defer cancel()
	_, err := h.client.Invoke(reqCtx, &lambda.InvokeInput{
		FunctionName:   aws.String(h.function),
		InvocationType: types.InvocationTypeDryRun,
	})
	if err != nil {
		return h.invokeError(ctx, err)
	}
	return nil
}
