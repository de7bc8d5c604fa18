package codec

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

func TestAppendBase64Std(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 300; n++ {
		for range 8 {
			src := make([]byte, n)
			for i := range src {
				src[i] = byte(rng.IntN(256))
			}
			prefix := []byte("x")
			want := base64.StdEncoding.AppendEncode(bytes.Clone(prefix), src)
			if got := appendBase64Std(bytes.Clone(prefix), src); !bytes.Equal(got, want) {
				t.Fatalf("n=%d: got %s, want %s", n, got, want)
			}
		}
	}
}

func FuzzAppendBase64Std(f *testing.F) {
	f.Add([]byte("hello, world"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if got, want := appendBase64Std(nil, src), base64.StdEncoding.AppendEncode(nil, src); !bytes.Equal(got, want) {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
}

func BenchmarkAppendBase64(b *testing.B) {
	src := bytes.Repeat([]byte{0x12, 0xfe, 0x77, 0x00, 0x9a}, 40)
	var dst []byte
	b.Run("stdlib", func(b *testing.B) {
		for b.Loop() {
			dst = base64.StdEncoding.AppendEncode(dst[:0], src)
		}
	})
	b.Run("pairs", func(b *testing.B) {
		for b.Loop() {
			dst = appendBase64Std(dst[:0], src)
		}
	})
}
