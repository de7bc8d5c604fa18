package codec

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/framing"
)

// unframe is framing.Unframe for the decoders of this package: its errors
// are *DecodeError, so that they match ErrDecode and read like the
// decoders' other errors.
func unframe(r config.Registry, f config.Format, src []byte, maxDecompressed int) (framing.Frame, error) {
	fr, err := framing.Unframe(r, f, src, maxDecompressed)
	if err != nil {
		return fr, framingErr(r, f, err)
	}
	return fr, nil
}

// framingErr turns an error of framing.Unframe into a *DecodeError.
func framingErr(r config.Registry, f config.Format, err error) *DecodeError {
	var fe *framing.Error
	switch {
	case errors.As(err, &fe):
		cause := errors.New(fe.Reason)
		if fe.Err != nil {
			cause = fmt.Errorf("%s: %w", fe.Reason, fe.Err)
		}
		return &DecodeError{Format: f, Framing: fe.Framing, SchemaID: fe.SchemaID, Reason: "malformed " + string(fe.Framing) + " framing", Err: cause}
	case errors.Is(err, framing.ErrUnknownFraming):
		return &DecodeError{Format: f, Reason: "unknown framing " + strconv.Quote(string(r))}
	}
	// Unframe returns no other errors; keep any future one a decode failure.
	return &DecodeError{Format: f, Framing: r, Err: err}
}
