package builtin

import "github.com/twmb/franz-go/pkg/kgo"

// smallHeaders is the number of headers up to which a record's repeated
// keys are found by comparing each key with the later ones: quadratic, but
// with no allocation it is the quickest way for the few headers records
// usually carry. Above it a set of keys keeps the work linear, because a
// record may carry tens of thousands of headers (80,000 took seconds per
// attempt with comparisons alone).
const smallHeaders = 16

// testHookHeaderWork, when a test sets it, is called once per record with
// the number of key comparisons and key-set operations that finding its
// repeated keys took: a measure of work that does not depend on the
// machine's speed. It is nil outside tests.
var testHookHeaderWork func(ops int)

// headerMask tells which headers of a record are shadowed: a later header
// has the same key. Rendering the others, in their order, gives every key
// once with its last value.
type headerMask struct {
	word  uint64   // up to 64 headers
	words []uint64 // more than 64 headers
}

// shadowedHeaders returns the mask of hs's shadowed headers.
func shadowedHeaders(hs []kgo.RecordHeader) headerMask {
	var (
		m   headerMask
		ops int
	)
	if len(hs) <= smallHeaders {
		for i := range hs {
			key := hs[i].Key
			for j := i + 1; j < len(hs); j++ {
				ops++
				if hs[j].Key == key {
					m.word |= 1 << i
					break
				}
			}
		}
	} else {
		if len(hs) > 64 {
			m.words = make([]uint64, (len(hs)+63)/64)
		}
		// From the end, a key already in the set is shadowed by the
		// header that put it there. One insertion per header tells both.
		seen := make(map[string]struct{}, len(hs))
		for i := len(hs) - 1; i >= 0; i-- {
			ops++
			n := len(seen)
			seen[hs[i].Key] = struct{}{}
			if len(seen) == n {
				m.set(i)
			}
		}
	}
	if testHookHeaderWork != nil {
		testHookHeaderWork(ops)
	}
	return m
}

func (m *headerMask) set(i int) {
	if m.words != nil {
		m.words[i/64] |= 1 << (i % 64)
		return
	}
	m.word |= 1 << i
}

// has reports whether the i-th header is shadowed.
func (m *headerMask) has(i int) bool {
	if m.words != nil {
		return m.words[i/64]&(1<<(i%64)) != 0
	}
	return m.word&(1<<i) != 0
}
