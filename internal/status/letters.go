package status

import (
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MaxLetters is how many dead letters the page lists.
const MaxLetters = 50

// maxMessage bounds a dead letter's message on the page, in bytes.
const maxMessage = 500

// DeadLetter is a record whose dead-letter copy the brokers acknowledged:
// where it was and why. Never its key, value or headers.
type DeadLetter struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Kind      string    `json:"kind"`    // dlq.error.kind: decode, handler, validation, expired
	Message   string    `json:"message"` // dlq.error.message, cut to 500 bytes
	Time      time.Time `json:"time"`    // when it was given up on (dlq.failed.at)
}

// Letters keeps the last MaxLetters dead letters. The zero value is ready
// to use; it is safe for concurrent use.
type Letters struct {
	mu   sync.Mutex
	ring [MaxLetters]DeadLetter
	n    int // written in all
}

// Add records dead letters, oldest first.
func (l *Letters) Add(ds ...DeadLetter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range ds {
		d.Message = cut(strings.Join(strings.Fields(d.Message), " "), maxMessage)
		l.ring[l.n%MaxLetters] = d
		l.n++
	}
}

// List returns the dead letters kept, newest first.
func (l *Letters) List() []DeadLetter {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := min(l.n, MaxLetters)
	out := make([]DeadLetter, 0, k)
	for i := range k {
		out = append(out, l.ring[(l.n-1-i)%MaxLetters])
	}
	return out
}

// cut shortens s to at most n bytes on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
