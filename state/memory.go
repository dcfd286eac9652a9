package state

import (
	"context"
	"fmt"
	"sync"

	"github.com/secretsync/secretsync/internal/fingerprint"
)

// Memory is a [Store] that keeps every state in memory, for tests and for
// programs that do not need state across restarts.
//
// Load and Save copy the state, so the caller and the store never share maps
// or records. The fingerprint key is made on the first call to
// FingerprintKey and kept for the life of the Memory.
//
// The zero value is an empty store ready to use. A Memory is safe for
// concurrent use by multiple goroutines.
type Memory struct {
	mu     sync.Mutex
	states map[string]*State
	docs   map[string]*Document
	key    []byte
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{} }

// Load returns a copy of the state of the named sync, or an error wrapping
// [ErrNotFound] if it was never saved. A done ctx returns ctx.Err().
func (m *Memory) Load(ctx context.Context, name string) (*State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.states[name]
	if !ok {
		return nil, fmt.Errorf("state: load %q: %w", name, ErrNotFound)
	}
	return st.Clone(), nil
}

// Save stores a copy of st as the state of the named sync if st.Revision is
// the stored revision (0 for the first save), and sets st.Revision to the
// new revision. Otherwise it returns an error wrapping [ErrConflict] and
// changes nothing; the caller should Load again before retrying. A done ctx
// returns ctx.Err().
func (m *Memory) Save(ctx context.Context, name string, st *State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if st == nil {
		return fmt.Errorf("state: save %q: nil state", name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var cur int64
	if old, ok := m.states[name]; ok {
		cur = old.Revision
	}
	if st.Revision != cur {
		return fmt.Errorf("state: save %q: revision %d, stored revision %d: %w", name, st.Revision, cur, ErrConflict)
	}
	c := st.Clone()
	c.Revision = cur + 1
	if m.states == nil {
		m.states = make(map[string]*State)
	}
	m.states[name] = c
	st.Revision = c.Revision
	return nil
}

// FingerprintKey returns a copy of the store's fingerprint key, making a
// random one on the first call. A done ctx returns ctx.Err().
func (m *Memory) FingerprintKey(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.key == nil {
		k, err := fingerprint.NewKey()
		if err != nil {
			return nil, fmt.Errorf("state: fingerprint key: %w", err)
		}
		m.key = k
	}
	return append([]byte(nil), m.key...), nil
}
