// Package builtin holds the handlers that ship with the service, selected
// by HANDLER: log (a line per record), http (a POST per batch, with
// Lambda-style partial failures) and lambda (an AWS Lambda function invoked
// with the MSK event), plus discard from the public package. They
// use only the public github.com/msk-consumer/msk-consumer/handler API.
package builtin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
)

// Builtin returns the factory of the built-in handler called name (log, http
// or discard; see config.HandlerLog and its siblings), and false for any
// other name, which is then looked up among the Go handlers compiled into the
// binary.
func Builtin(name string) (handler.Factory, bool) {
	return BuiltinFor(name, config.EventSource{}, nil)
}

// BuiltinFor is Builtin for a source described by src: what the MSK event
// of the lambda handler (and of the http one with HTTP_HANDLER_BODY=msk)
// says of the brokers and the registry framing; reg, when not nil, gets the
// lambda handler's metric.
func BuiltinFor(name string, src config.EventSource, reg prometheus.Registerer) (handler.Factory, bool) {
	switch name {
	case config.HandlerLambda:
		return func(d handler.Deps) (handler.Handler, error) {
			h, err := NewLambda(d.Config, src, d.Logger, WithRegisterer(reg))
			if err != nil {
				return nil, err
			}
			return h, nil
		}, true
	case config.HandlerLog:
		return func(d handler.Deps) (handler.Handler, error) { return NewLog(d.Logger), nil }, true
	case config.HandlerDiscard:
		return func(handler.Deps) (handler.Handler, error) { return handler.Discard{}, nil }, true
	case config.HandlerHTTP:
		return func(d handler.Deps) (handler.Handler, error) {
			h, err := NewHTTP(d.Config, d.Logger, nil)
			if err != nil {
				// Return a nil interface, not a nil *HTTP in a non-nil one.
				return nil, err
			}
			if d.Config.HTTPBody == config.BodyMSK {
				h.UseMSKEvent(d.Config, src)
			}
			return h, nil
		}, true
	}
	return nil, false
}
