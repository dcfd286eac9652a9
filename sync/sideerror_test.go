package sync_test

import (
	"context"
	"errors"
	"testing"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// failStore is a state store whose Load, Save or FingerprintKey fails.
type failStore struct {
	state.Store
	load, save, key error
}

func (f *failStore) Load(ctx context.Context, name string) (*state.State, error) {
	if f.load != nil {
		return nil, f.load
	}
	return f.Store.Load(ctx, name)
}

func (f *failStore) Save(ctx context.Context, name string, st *state.State) error {
	if f.save != nil {
		return f.save
	}
	return f.Store.Save(ctx, name, st)
}

func (f *failStore) FingerprintKey(ctx context.Context) ([]byte, error) {
	if f.key != nil {
		return nil, f.key
	}
	return f.Store.FingerprintKey(ctx)
}

// TestSideErrors: a round that fails as a whole says which part failed,
// as a *SideError, with the cause still visible to errors.Is.
func TestSideErrors(t *testing.T) {
	cause := errors.New("boom")
	down := func() error { return errors.Join(destination.ErrUnavailable, cause) }
	listFails := memory.Options{BeforeList: func(context.Context) error { return cause }}
	applyDown := memory.Options{BeforeApply: func(context.Context, destination.Change) error { return down() }}
	for _, tt := range []struct {
		name     string
		src, dst memory.Options
		store    *failStore
		side, op string
	}{
		{name: "list source", src: listFails, side: sync.SideSource, op: sync.OpList},
		{name: "list destination", dst: listFails, side: sync.SideDestination, op: sync.OpList},
		{name: "destination down", dst: applyDown, side: sync.SideDestination, op: sync.OpApply},
		{name: "load", store: &failStore{load: cause}, side: sync.SideStore, op: sync.OpLoad},
		{name: "save", store: &failStore{save: cause}, side: sync.SideStore, op: sync.OpSave},
		{name: "fingerprint key", store: &failStore{key: cause}, side: sync.SideStore, op: sync.OpFingerprintKey},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := sync.Config{Name: "side", Source: memory.NewWithOptions(map[string]string{"A": "1"}, &tt.src),
				Destination: memory.NewWithOptions(nil, &tt.dst)}
			if tt.store != nil {
				tt.store.Store = state.NewMemory()
				cfg.Store = tt.store
			}
			s, err := sync.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Run(context.Background())
			var se *sync.SideError
			if !errors.As(err, &se) || se.Side != tt.side || se.Op != tt.op || !errors.Is(err, cause) {
				t.Fatalf("Run = %v, want a SideError %s %s", err, tt.side, tt.op)
			}
			if errors.Is(err, destination.ErrUnavailable) != (tt.op == sync.OpApply) {
				t.Errorf("ErrUnavailable is seen through the SideError only when it is the cause: %v", err)
			}
		})
	}
}
