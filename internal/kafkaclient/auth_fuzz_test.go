package kafkaclient

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/msk-consumer/msk-consumer/config"
)

// FuzzTapObserve feeds the tap's response reader arbitrary bytes, cut into
// arbitrary reads, with SASL requests pending: it must never panic, and must
// pass through (return no error for) anything that is not a SASL refusal.
func FuzzTapObserve(f *testing.F) {
	ok := kmsg.NewPtrSASLAuthenticateResponse()
	ok.Version = 1
	ok.SessionLifetimeMillis = 1000
	f.Add(frame(1, ok.AppendTo(nil)), uint8(3))
	bad := kmsg.NewPtrSASLAuthenticateResponse()
	bad.Version = 1
	bad.ErrorCode = 58
	f.Add(frame(1, bad.AppendTo(nil)), uint8(1))
	f.Add(append(frame(7, []byte{1, 2, 3}), frame(2, []byte{0, 0})...), uint8(5))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1}, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		tap := newAuthTap(config.Kafka{Auth: config.AuthPlain}, func() string { return "user u" }, nil, nil)
		c := tap.wrap(nopConn{}, "broker:9096").(*tapConn)
		c.inAuth, c.auths = true, 1
		c.pending[1] = saslReq{kmsg.SASLAuthenticate.Int16(), 1}
		c.pending[2] = saslReq{kmsg.SASLHandshake.Int16(), 1}
		c.pending[3] = saslReq{kmsg.SASLAuthenticate.Int16(), 2}
		step := int(cut%16) + 1
		for len(data) > 0 {
			n := min(step, len(data))
			if err := c.observe(data[:n]); err != nil {
				if _, isAuth := err.(*AuthError); !isAuth {
					t.Fatalf("got %T %v, want only *AuthError", err, err)
				}
			}
			data = data[n:]
		}
	})
}

// frame is a response on the wire: size, correlation id, body.
func frame(corr int32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	return append(b, body...)
}

type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }
