package jsonx

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", `""`},
		{"plain", "SKU-42", `"SKU-42"`},
		{"quote and backslash", `a"b\c`, `"a\"b\\c"`},
		{"controls", "a\nb\tc\rd\x01\x1f", `"a\nb\tc\rd\u0001\u001f"`},
		{"html stays", "<a>&", `"<a>&"`},
		{"unicode", "héllo ✓", `"héllo ✓"`},
		{"line separators", "a\u2028b\u2029", `"a\u2028b\u2029"`},
		{"invalid utf8", "a\xffb", "\"a\ufffdb\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendString(nil, tt.in)); got != tt.want {
				t.Errorf("string: got %s, want %s", got, tt.want)
			}
			if got := string(AppendString(nil, []byte(tt.in))); got != tt.want {
				t.Errorf("bytes: got %s, want %s", got, tt.want)
			}
		})
	}
}

// FuzzAppendString checks the output is always valid JSON that decodes back
// to the input (for valid UTF-8), matching encoding/json.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "\x00\x7f", "é\u2028", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString(nil, s)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q for %q", out, s)
		}
		if !utf8.ValidString(s) {
			return
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if back != s {
			t.Fatalf("round trip: got %q, want %q", back, s)
		}
	})
}

// TestAppendStringEveryPosition puts each kind of byte that needs a look at
// every position of strings longer than the eight-byte fast path, and
// checks against encoding/json.
func TestAppendStringEveryPosition(t *testing.T) {
	for _, special := range []string{`"`, `\`, "\x00", "\x1f", "\n", "\x7f", "é", "\u2028", "\xff", " ", "~"} {
		for n := 0; n <= 24; n++ {
			for pos := 0; pos <= n; pos++ {
				base := []byte("abcdefghijklmnopqrstuvwxyz"[:n])
				s := string(base[:pos]) + special + string(base[pos:])
				want, _ := json.Marshal(s)
				if !utf8.ValidString(s) {
					want = []byte(`"` + string(base[:pos]) + "\ufffd" + string(base[pos:]) + `"`)
				}
				// encoding/json escapes <, >, & and U+2028/9 too; this
				// package leaves HTML characters alone, and none is used.
				if got := AppendString(nil, s); string(got) != string(want) {
					t.Fatalf("%q: got %s, want %s", s, got, want)
				}
			}
		}
	}
}
