package gcpsm_test

import (
	"context"
	"testing"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/destinationtest"
	"github.com/secretsync/secretsync/destination/gcpsm"
	"github.com/secretsync/secretsync/destination/gcpsm/gcpsmtest"
)

func TestConformance(t *testing.T) {
	destinationtest.Run(t, destinationtest.Harness{
		Capabilities:  destination.Capabilities{NoCheckAndSet: true},
		Keys:          []string{"DB_URL", "api-key_v2", "nested_path_KEY"},
		MaxValueBytes: gcpsm.MaxPayload,
		New: func(t *testing.T) destinationtest.Fixture {
			srv := newServer(t, gcpsmtest.Options{MaxPageSize: 3})
			const owner = "assoc-conformance"
			d := open(t, srv, gcpsm.Options{Owner: owner})
			return destinationtest.Fixture{
				Destination: d,
				Set: func(_ context.Context, key, value string) error {
					_, err := srv.Put(key, value, ownerLabels(owner))
					return err
				},
				Delete: func(_ context.Context, key string) error {
					srv.Delete(key)
					return nil
				},
				SetUnowned: func(_ context.Context, key, value string) error {
					_, err := srv.Put(key, value, map[string]string{"team": "other"})
					return err
				},
				Get: func(_ context.Context, key string) (string, bool, error) {
					v, _, ok := srv.Value(key)
					return v, ok, nil
				},
			}
		},
	})
}
