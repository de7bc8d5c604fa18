package framing

import (
	"bytes"
	"compress/zlib"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/msk-consumer/msk-consumer/config"
)

var version = [16]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}

const versionRef = "01234567-89ab-cdef-0123-456789abcdef"

func confluent(id byte, rest ...byte) []byte { return append([]byte{0, 0, 0, 0, id}, rest...) }

func glue(compression byte, rest ...byte) []byte {
	return append(append([]byte{3, compression}, version[:]...), rest...)
}

func deflate(tb testing.TB, p []byte) []byte {
	tb.Helper()
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	if _, err := w.Write(p); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func TestUnframe(t *testing.T) {
	big := bytes.Repeat([]byte{'x'}, 1000)
	for _, tc := range []struct {
		name    string
		r       config.Registry
		f       config.Format
		src     []byte
		max     int
		want    Frame
		wantRef string
	}{
		{name: "none", r: config.RegistryNone, f: config.FormatAvro, src: []byte("x"), want: Frame{Payload: []byte("x")}},
		{name: "empty registry", f: config.FormatAvro, src: []byte("x"), want: Frame{Payload: []byte("x")}},
		{name: "confluent avro", r: config.RegistryConfluent, f: config.FormatAvro, src: confluent(7, 'x'),
			want: Frame{Framing: config.RegistryConfluent, ID: 7, Payload: []byte("x")}, wantRef: "7"},
		{name: "confluent protobuf, count 0", r: config.RegistryConfluent, f: config.FormatProtobuf, src: confluent(7, 0, 'x'),
			want: Frame{Framing: config.RegistryConfluent, ID: 7, Indexes: []int{0}, Payload: []byte("x")}, wantRef: "7"},
		{name: "confluent protobuf, path [1 2]", r: config.RegistryConfluent, f: config.FormatProtobuf, src: confluent(7, 4, 2, 4, 'x'),
			want: Frame{Framing: config.RegistryConfluent, ID: 7, Indexes: []int{1, 2}, Payload: []byte("x")}, wantRef: "7"},
		{name: "glue json", r: config.RegistryGlue, f: config.FormatJSON, src: glue(0, '{', '}'),
			want: Frame{Framing: config.RegistryGlue, Version: version, Payload: []byte("{}")}, wantRef: versionRef},
		{name: "glue protobuf", r: config.RegistryGlue, f: config.FormatProtobuf, src: glue(0, 2, 'x'),
			want: Frame{Framing: config.RegistryGlue, Version: version, Indexes: []int{2}, Payload: []byte("x")}, wantRef: versionRef},
		{name: "glue zlib", r: config.RegistryGlue, f: config.FormatAvro, src: glue(5, deflate(t, big)...),
			want: Frame{Framing: config.RegistryGlue, Version: version, Payload: big}, wantRef: versionRef},
		{name: "glue zlib at the limit", r: config.RegistryGlue, f: config.FormatAvro, src: glue(5, deflate(t, big)...), max: len(big),
			want: Frame{Framing: config.RegistryGlue, Version: version, Payload: big}, wantRef: versionRef},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Unframe(tc.r, tc.f, tc.src, tc.max)
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if tc.wantRef != "" {
				if ref := got.SchemaRef(); ref != tc.wantRef {
					t.Fatalf("got schema ref %q, want %q", ref, tc.wantRef)
				}
			}
		})
	}
}

func TestUnframeErrors(t *testing.T) {
	big := bytes.Repeat([]byte{'x'}, 1000)
	for _, tc := range []struct {
		name   string
		r      config.Registry
		f      config.Format
		src    []byte
		max    int
		want   Error // Err is compared by presence only
		errMsg string
	}{
		{name: "confluent short", r: config.RegistryConfluent, f: config.FormatAvro, src: []byte{0, 0, 1},
			want:   Error{Framing: config.RegistryConfluent, Reason: "3 bytes, shorter than the 5-byte header"},
			errMsg: "malformed confluent framing: 3 bytes, shorter than the 5-byte header"},
		{name: "confluent magic", r: config.RegistryConfluent, f: config.FormatAvro, src: []byte{1, 0, 0, 0, 7},
			want: Error{Framing: config.RegistryConfluent, Reason: "magic byte 1, want 0"}},
		{name: "confluent index count", r: config.RegistryConfluent, f: config.FormatProtobuf, src: confluent(7, 20, 2),
			want:   Error{Framing: config.RegistryConfluent, SchemaID: "7", Reason: "message-index count 10 exceeds the bytes left"},
			errMsg: "malformed confluent framing (schema id 7): message-index count 10 exceeds the bytes left"},
		{name: "confluent negative count", r: config.RegistryConfluent, f: config.FormatProtobuf, src: confluent(7, 1),
			want: Error{Framing: config.RegistryConfluent, SchemaID: "7", Reason: "negative message-index count -1"}},
		{name: "confluent no count", r: config.RegistryConfluent, f: config.FormatProtobuf, src: confluent(7),
			want: Error{Framing: config.RegistryConfluent, SchemaID: "7", Reason: "message-index count is not a valid varint"}},
		{name: "confluent index out of range", r: config.RegistryConfluent, f: config.FormatProtobuf, src: confluent(7, 2, 0x82, 0x80, 0x80, 0x01),
			want: Error{Framing: config.RegistryConfluent, SchemaID: "7", Reason: "message index 1048577 out of range"}},
		{name: "glue short", r: config.RegistryGlue, f: config.FormatAvro, src: []byte{3, 0, 1},
			want: Error{Framing: config.RegistryGlue, Reason: "3 bytes, shorter than the 18-byte header"}},
		{name: "glue header version", r: config.RegistryGlue, f: config.FormatAvro, src: append([]byte{2, 0}, version[:]...),
			want:   Error{Framing: config.RegistryGlue, SchemaID: versionRef, Reason: "header version byte 2, want 3"},
			errMsg: "malformed glue framing (schema version id " + versionRef + "): header version byte 2, want 3"},
		{name: "glue compression", r: config.RegistryGlue, f: config.FormatAvro, src: glue(9),
			want: Error{Framing: config.RegistryGlue, SchemaID: versionRef, Reason: "compression byte 9, want 0 (none) or 5 (zlib)"}},
		{name: "glue bad zlib", r: config.RegistryGlue, f: config.FormatAvro, src: glue(5, 1, 2, 3),
			want: Error{Framing: config.RegistryGlue, SchemaID: versionRef, Reason: "zlib", Err: zlib.ErrHeader}},
		{name: "glue zip bomb", r: config.RegistryGlue, f: config.FormatAvro, src: glue(5, deflate(t, big)...), max: len(big) - 1,
			want: Error{Framing: config.RegistryGlue, SchemaID: versionRef, Reason: "zlib payload decompresses to more than 999 bytes"}},
		{name: "glue protobuf index", r: config.RegistryGlue, f: config.FormatProtobuf, src: glue(0, 0x80),
			want: Error{Framing: config.RegistryGlue, SchemaID: versionRef, Reason: "message index is not a valid varint"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unframe(tc.r, tc.f, tc.src, tc.max)
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("got %T %v, want *Error", err, err)
			}
			if fe.Framing != tc.want.Framing || fe.SchemaID != tc.want.SchemaID || fe.Reason != tc.want.Reason || (fe.Err == nil) != (tc.want.Err == nil) {
				t.Fatalf("got %+v, want %+v", *fe, tc.want)
			}
			if tc.want.Err != nil && !errors.Is(err, tc.want.Err) {
				t.Fatalf("got %v, want it to wrap %v", err, tc.want.Err)
			}
			if tc.errMsg != "" && err.Error() != tc.errMsg {
				t.Fatalf("got %q, want %q", err.Error(), tc.errMsg)
			}
		})
	}
}

func TestUnframeUnknown(t *testing.T) {
	_, err := Unframe("apicurio", config.FormatAvro, []byte{0}, 0)
	if !errors.Is(err, ErrUnknownFraming) || !strings.Contains(err.Error(), `"apicurio"`) {
		t.Fatalf("got %v, want ErrUnknownFraming naming the framing", err)
	}
	var fe *Error
	if errors.As(err, &fe) {
		t.Fatalf("got *Error %v, want only ErrUnknownFraming", fe)
	}
}

// TestInflateReusesReaders checks that a pooled reader left by a failed
// stream decodes the next one.
func TestInflateReusesReaders(t *testing.T) {
	good := glue(5, deflate(t, []byte("payload"))...)
	for i := range 3 {
		if _, err := Unframe(config.RegistryGlue, config.FormatAvro, glue(5, deflate(t, []byte("payload"))[:6]...), 0); err == nil {
			t.Fatalf("round %d: got no error for a truncated stream", i)
		}
		fr, err := Unframe(config.RegistryGlue, config.FormatAvro, good, 0)
		if err != nil || string(fr.Payload) != "payload" {
			t.Fatalf("round %d: got (%q, %v), want payload", i, fr.Payload, err)
		}
	}
}
