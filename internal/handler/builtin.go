package handler

import "msk-consumer/config"

// Builtin returns the factory of the built-in handler called name (log, http
// or discard; see config.HandlerLog and its siblings), and false for any
// other name, which is then looked up among the Go handlers compiled into the
// binary.
func Builtin(name string) (Factory, bool) {
	switch name {
	case config.HandlerLog:
		return func(d Deps) (Handler, error) { return NewLog(d.Logger), nil }, true
	case config.HandlerDiscard:
		return func(Deps) (Handler, error) { return Discard{}, nil }, true
	case config.HandlerHTTP:
		return func(d Deps) (Handler, error) {
			h, err := NewHTTP(d.Config, d.Logger, nil)
			if err != nil {
				// Return a nil interface, not a nil *HTTP in a non-nil one.
				return nil, err
			}
			return h, nil
		}, true
	}
	return nil, false
}
