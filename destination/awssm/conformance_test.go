package awssm_test

import (
	"context"
	"testing"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/awssm/awssmtest"
	"github.com/secretsync/secretsync/destination/destinationtest"
)

func TestConformance(t *testing.T) {
	destinationtest.Run(t, destinationtest.Harness{
		Capabilities: destination.Capabilities{NoCheckAndSet: true},
		New: func(t *testing.T) destinationtest.Fixture {
			srv := newServer(t, awssmtest.Options{})
			const owner = "conformance"
			return destinationtest.Fixture{
				Destination: open(t, options(srv, owner)),
				Set: func(_ context.Context, key, value string) error {
					srv.Put(key, value, owned(owner))
					return nil
				},
				Delete: func(_ context.Context, key string) error {
					srv.Delete(key, false)
					return nil
				},
				SetUnowned: func(_ context.Context, key, value string) error {
					srv.Put(key, value, map[string]string{"team": "payments"})
					return nil
				},
				Get: func(_ context.Context, key string) (string, bool, error) {
					s, ok := srv.Get(key)
					if !ok || s.Deleted {
						return "", false, nil
					}
					return s.Value, true, nil
				},
			}
		},
	})
}
