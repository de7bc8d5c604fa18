package idempotency

import (
	"context"
	"sync"
	"time"
)

// Memory is a Store in this process's memory, for tests (of this package
// and of the pipeline): it follows the protocol exactly, with the clock
// given, but it is shared by no other process. Fail, if set, makes every
// call return its error, to stand for an outage.
type Memory struct {
	mu      sync.Mutex
	now     func() time.Time
	entries map[string]memEntry
	fail    error
	failOp  map[string]error
	calls   map[string]int
}

type memEntry struct {
	owner     string // "" when completed or dead-lettered
	lettered  bool   // dead-lettered by the record at at
	at        string
	expiresAt time.Time
}

// NewMemory returns an empty Memory store on the clock now (nil:
// time.Now).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, entries: map[string]memEntry{}, calls: map[string]int{}}
}

// Fail makes every later call fail with err, or work again with nil.
func (m *Memory) Fail(err error) {
	m.mu.Lock()
	m.fail = err
	m.mu.Unlock()
}

// FailOp makes every later call of op (OpComplete, ...) fail with err, or
// work again with nil: an outage of one kind of request only (a table's
// write capacity, a script refused).
func (m *Memory) FailOp(op string, err error) {
	m.mu.Lock()
	if m.failOp == nil {
		m.failOp = map[string]error{}
	}
	m.failOp[op] = err
	m.mu.Unlock()
}

// Calls returns how many calls of op (OpBegin, ...) were made, failed ones
// included.
func (m *Memory) Calls(op string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[op]
}

// Completed reports whether key is completed (handled) and not expired.
func (m *Memory) Completed(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.live(key)
	return ok && e.owner == "" && !e.lettered
}

// Lettered reports whether key is marked dead-lettered and not expired.
func (m *Memory) Lettered(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.live(key)
	return ok && e.lettered
}

// Held reports whether key is in progress for owner and not expired.
func (m *Memory) Held(key, owner string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.live(key)
	return ok && e.owner == owner
}

// live returns key's entry if it has not expired.
func (m *Memory) live(key string) (memEntry, bool) {
	e, ok := m.entries[key]
	if !ok || !m.now().Before(e.expiresAt) {
		return memEntry{}, false
	}
	return e, true
}

func (m *Memory) enter(op string) error {
	m.calls[op]++
	if err := m.failOp[op]; err != nil {
		return err
	}
	return m.fail
}

// Begin implements Store.
func (m *Memory) Begin(ctx context.Context, keys, at []string, owner string, ttl time.Duration) ([]State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.enter(OpBegin); err != nil {
		return nil, err
	}
	states := make([]State, len(keys))
	for i, k := range keys {
		e, ok := m.live(k)
		if ok && e.lettered && e.at != atOf(at, i) {
			ok = false // another record's dead letter: free to claim
		}
		switch {
		case ok && e.owner == "":
			states[i] = Completed
		case ok && e.owner != owner:
			states[i] = InProgress
		case ok:
			states[i] = Claimed // ours already: keep its expiry, as Redis does
		default:
			m.entries[k] = memEntry{owner: owner, expiresAt: m.now().Add(ttl)}
			states[i] = Claimed
		}
	}
	return states, nil
}

// Complete implements Store.
func (m *Memory) Complete(ctx context.Context, keys []string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.enter(OpComplete); err != nil {
		return err
	}
	for _, k := range keys {
		m.entries[k] = memEntry{expiresAt: m.now().Add(ttl)}
	}
	return nil
}

// Letter implements Store.
func (m *Memory) Letter(ctx context.Context, keys, at []string, owner string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.enter(OpComplete); err != nil {
		return err
	}
	for i, k := range keys {
		e, ok := m.live(k)
		if ok && (e.owner == "" && !e.lettered || e.owner != "" && e.owner != owner) {
			continue // completed, or another owner's
		}
		m.entries[k] = memEntry{lettered: true, at: atOf(at, i), expiresAt: m.now().Add(ttl)}
	}
	return nil
}

// Renew implements Store.
func (m *Memory) Renew(ctx context.Context, keys []string, owner string, ttl time.Duration) ([]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.enter(OpRenew); err != nil {
		return nil, err
	}
	held := make([]bool, len(keys))
	for i, k := range keys {
		if e, ok := m.live(k); ok && e.owner == owner {
			e.expiresAt = m.now().Add(ttl)
			m.entries[k] = e
			held[i] = true
		}
	}
	return held, nil
}

// Release implements Store.
func (m *Memory) Release(ctx context.Context, keys []string, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.enter(OpRelease); err != nil {
		return err
	}
	for _, k := range keys {
		if e, ok := m.live(k); ok && e.owner == owner {
			delete(m.entries, k)
		}
	}
	return nil
}

// Close implements Store.
func (m *Memory) Close() error { return nil }

// Ping does nothing: the memory store is always there.
func (*Memory) Ping(context.Context) error { return nil }
