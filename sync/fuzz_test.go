package sync_test

import (
	"context"
	"testing"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/sync"
)

// FuzzKeysStayInPlace: whatever the key schema, the environment and the
// source keys, every key the engine hands to a destination passes
// destination.CheckKey, so that no write can land outside the
// destination's place (vaultkv's FuzzKeyPath then checks that such a key
// stays under the configured mount and path).
func FuzzKeysStayInPlace(f *testing.F) {
	for _, seed := range [][4]string{
		{"{{secretKey}}", "", "DB_PASSWORD", "../../other-team/DB_PASSWORD"},
		{"team/{{secretKey}}", "", "..", "x"},
		{"{{environment}}/{{secretKey}}", "prod", "/etc/passwd", "a//b"},
		{"{{environment}}/{{secretKey}}", "..", "x", "y"},
		{"APP_{{secretKey}}", "", "a/./b", "ok"},
		{"{{secretKey}}/", "", "a", "b/"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	f.Fuzz(func(t *testing.T, schema, env, k1, k2 string) {
		checked := &checkingDest{Destination: memory.New(nil), t: t}
		s, err := sync.New(sync.Config{Name: "fuzz", Source: memory.New(map[string]string{k1: "1", k2: "2"}),
			Destination: checked, KeySchema: schema, Environment: env})
		if err != nil {
			return // a schema or environment New refuses
		}
		rep, _ := s.Run(context.Background())
		for _, r := range rep.Keys {
			if r.Action == sync.Created && (destination.CheckKey(r.Key) != nil || destination.CheckKey(r.DestinationKey) != nil) {
				t.Fatalf("unsafe key created: %q as %q", r.Key, r.DestinationKey)
			}
		}
	})
}

// checkingDest fails the test when a change names an unsafe key.
type checkingDest struct {
	destination.Destination
	t *testing.T
}

func (d *checkingDest) Apply(ctx context.Context, changes []destination.Change) ([]error, error) {
	for _, c := range changes {
		if err := destination.CheckKey(c.Key); err != nil {
			d.t.Errorf("the engine handed the destination an unsafe key: %v", err)
		}
	}
	return d.Destination.Apply(ctx, changes)
}
