package codec

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/jsonx"
)

// jsonDecoder passes through a value that is already JSON.
type jsonDecoder struct{}

// AppendJSON appends src as it is, after checking that it is exactly one JSON
// value (surrounding whitespace allowed). It is not re-encoded, so the
// producer's spacing and key order survive.
//
// json.Valid lets invalid UTF-8 inside strings through; JSON must be UTF-8,
// and one such value would make a strict reader reject the whole batch it
// is sent in, so that is checked too.
func (jsonDecoder) AppendJSON(_ context.Context, dst, src []byte) ([]byte, error) {
	if len(src) == 0 {
		return dst, decodeErr(config.FormatJSON, "empty input")
	}
	if !utf8.Valid(src) {
		return dst, decodeErr(config.FormatJSON, "not valid UTF-8")
	}
	if !json.Valid(src) {
		// Only on the failure path: find out where and why, for the
		// dead-letter record.
		var raw json.RawMessage
		err := json.Unmarshal(src, &raw)
		return dst, &DecodeError{Format: config.FormatJSON, Reason: "not valid JSON", Err: err}
	}
	return append(dst, src...), nil
}

// stringDecoder renders UTF-8 text as a JSON string.
type stringDecoder struct{}

// AppendJSON appends src as a JSON string. Bytes that are not UTF-8 are an
// error rather than being replaced, so that no record is silently altered.
func (stringDecoder) AppendJSON(_ context.Context, dst, src []byte) ([]byte, error) {
	if !utf8.Valid(src) {
		return dst, decodeErr(config.FormatString, "not valid UTF-8")
	}
	return jsonx.AppendString(dst, src), nil
}

// bytesDecoder renders opaque bytes as a JSON string of standard base64.
type bytesDecoder struct{}

// AppendJSON appends src as a JSON string of standard, padded base64.
func (bytesDecoder) AppendJSON(_ context.Context, dst, src []byte) ([]byte, error) {
	dst = append(dst, '"')
	dst = appendBase64Std(dst, src)
	return append(dst, '"'), nil
}

// intDecoder renders a 4-byte big-endian signed integer as a JSON number.
type intDecoder struct{}

// AppendJSON appends the decimal form of src, which must be exactly 4 bytes.
func (intDecoder) AppendJSON(_ context.Context, dst, src []byte) ([]byte, error) {
	if len(src) != 4 {
		return dst, lengthErr(config.FormatInt, len(src), 4)
	}
	return strconv.AppendInt(dst, int64(int32(binary.BigEndian.Uint32(src))), 10), nil
}

// longDecoder renders an 8-byte big-endian signed integer as a JSON number.
type longDecoder struct{}

// AppendJSON appends the decimal form of src, which must be exactly 8 bytes.
func (longDecoder) AppendJSON(_ context.Context, dst, src []byte) ([]byte, error) {
	if len(src) != 8 {
		return dst, lengthErr(config.FormatLong, len(src), 8)
	}
	return strconv.AppendInt(dst, int64(binary.BigEndian.Uint64(src)), 10), nil
}

func lengthErr(f config.Format, got, want int) *DecodeError {
	return decodeErr(f, "got "+strconv.Itoa(got)+" bytes, want "+strconv.Itoa(want))
}
