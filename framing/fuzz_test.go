package framing

import (
	"errors"
	"testing"

	"github.com/msk-consumer/msk-consumer/config"
)

// Fuzzers of the framing parsers. Every input either parses or fails with
// an *Error; nothing panics, and no length or count in the input makes an
// allocation larger than the input (or, decompressed, the limit) allows.
//
//	go test -run '^$' -fuzz '^FuzzConfluentFraming$' -fuzztime 60s ./framing/

func FuzzConfluentFraming(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 0, 'x'})
	f.Add([]byte{0, 0, 0, 0, 1, 4, 2, 4, 'x'})
	f.Add([]byte{0, 0, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, format := range []config.Format{config.FormatAvro, config.FormatProtobuf} {
			fr, err := Unframe(config.RegistryConfluent, format, src, 0)
			if err != nil {
				checkError(t, err, config.RegistryConfluent)
				continue
			}
			if len(fr.Payload) > len(src) || len(fr.Indexes) > len(src) {
				t.Fatalf("payload %d indexes %d from %d bytes", len(fr.Payload), len(fr.Indexes), len(src))
			}
		}
	})
}

func FuzzGlueFraming(f *testing.F) {
	id := [16]byte{1, 2, 3}
	f.Add(append(append([]byte{3, 0}, id[:]...), 'x'))
	f.Add(append(append([]byte{3, 5}, id[:]...), 0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01))
	f.Add(append([]byte{3, 9}, id[:]...))
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, format := range []config.Format{config.FormatJSON, config.FormatProtobuf} {
			fr, err := Unframe(config.RegistryGlue, format, src, 1<<20)
			if err != nil {
				checkError(t, err, config.RegistryGlue)
				continue
			}
			if len(fr.Payload) > 1<<20 {
				t.Fatalf("payload of %d bytes past the limit", len(fr.Payload))
			}
		}
	})
}

// checkError fails t unless err is an *Error of framing r.
func checkError(t *testing.T, err error, r config.Registry) {
	t.Helper()
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("got %T %v, want *Error", err, err)
	}
	if fe.Framing != r || fe.Reason == "" {
		t.Fatalf("got framing %q reason %q, want framing %q and a reason", fe.Framing, fe.Reason, r)
	}
}
