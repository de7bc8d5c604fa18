// Package jsonx appends JSON strings to byte slices without reflection or
// intermediate allocations. It is the building block for the hand-written
// JSON on the hot path (decoded records, the HTTP handler's request body).
package jsonx

import (
	"encoding/binary"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// safe[c] is true for ASCII bytes that need no escaping inside a JSON
// string. '<', '>' and '&' are left as they are: the output is not HTML.
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendString appends s as a quoted JSON string. Invalid UTF-8 is replaced
// by U+FFFD, as encoding/json does; callers that must not alter bytes check
// utf8.Valid first.
func AppendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look: no control
		// byte, quote, backslash or non-ASCII byte (the common case of
		// names, SKUs and descriptions).
		i = plainRun(s, i)
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript parsers
		// that read JSON as code; escape them as encoding/json does.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// plainRun returns the end of the run of plain bytes of s from i, checked
// eight at a time, stopping before the block that holds a byte needing a
// look (the byte loop of AppendString handles it).
func plainRun[S ~string | ~[]byte](s S, i int) int {
	switch v := any(s).(type) {
	case []byte:
		for i+8 <= len(v) && plain8(binary.LittleEndian.Uint64(v[i:])) {
			i += 8
		}
	case string:
		for i+8 <= len(v) && plain8(loadString8(v, i)) {
			i += 8
		}
	}
	return i
}

// loadString8 returns the eight bytes of s at i as a little-endian word
// (the compiler merges the loads into one).
func loadString8(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// plain8 reports whether none of the eight bytes of w needs escaping or
// UTF-8 decoding: each is in 0x20..0x7f and neither '"' nor '\\'. The
// zero-byte tests may flag bytes above a true hit (borrows), never report a
// hit that is not there, which is all a yes/no answer needs.
func plain8(w uint64) bool {
	lt20 := (w - 0x20*lsb) &^ w         // high bit set below a byte < 0x20
	q := w ^ ('"' * lsb)                // zero where a byte is '"'
	bs := w ^ ('\\' * lsb)              // zero where a byte is '\\'
	hasQ := (q - lsb) &^ q              // high bit set at a zero byte of q
	hasBS := (bs - lsb) &^ bs           // ... of bs
	return (lt20|hasQ|hasBS|w)&msb == 0 // w's own high bits: non-ASCII
}

func decodeRune[S ~string | ~[]byte](s S) (rune, int) {
	switch v := any(s).(type) {
	case string:
		return utf8.DecodeRuneInString(v)
	case []byte:
		return utf8.DecodeRune(v)
	}
	// A named type: convert through string, which copies only the few
	// bytes a rune takes.
	n := min(len(s), utf8.UTFMax)
	return utf8.DecodeRuneInString(string(s[:n]))
}
