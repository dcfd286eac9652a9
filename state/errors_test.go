package state_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/secretsync/secretsync/state"
)

// TestErrKeySize: the errors that the documentation promises for a key
// of the wrong size can be matched with state.ErrKeySize, from outside the
// module's internal packages.
func TestErrKeySize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if _, err := state.OpenFile(path, &state.FileOptions{Key: make([]byte, state.KeySize-1)}); !errors.Is(err, state.ErrKeySize) {
		t.Fatalf("OpenFile with a short key = %v, want state.ErrKeySize", err)
	}
	if err := os.WriteFile(path+".key", make([]byte, state.KeySize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := state.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = f.FingerprintKey(context.Background())
	var ce *state.CorruptError
	if !errors.Is(err, state.ErrKeySize) || !errors.As(err, &ce) {
		t.Fatalf("FingerprintKey with a long key file = %v, want a *CorruptError wrapping state.ErrKeySize", err)
	}
	if state.KeySize != 32 {
		t.Fatalf("KeySize = %d", state.KeySize)
	}
}
