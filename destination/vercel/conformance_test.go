package vercel_test

import (
	"context"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/destinationtest"
	"github.com/secretsync/secretsync/destination/vercel"
	"github.com/secretsync/secretsync/destination/vercel/verceltest"
)

// conformanceKeys are valid Vercel names (the suite's default keys hold
// '-', '.' and '/', which Vercel refuses).
var conformanceKeys = []string{"DB_URL", "API_KEY_V2", "nested_path_KEY"}

// fixture opens a destination over a fresh server, with its out-of-band
// helpers.
func fixture(t *testing.T, so verceltest.Options, typ string) (destinationtest.Fixture, *verceltest.Server, *vercel.Destination) {
	t.Helper()
	srv := verceltest.New(t, &so)
	targets := []string{vercel.Preview, vercel.Production}
	const owner = "conformance"
	d, err := vercel.New(context.Background(), &vercel.Options{
		Token: "test-token", ProjectID: srv.ProjectID(), TeamID: srv.TeamID(), Targets: targets,
		Type: typ, Owner: owner, BaseURL: srv.URL, MinBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if typ == "" {
		typ = vercel.TypeEncrypted
	}
	create := func(key, value, comment string) error {
		_, err := srv.Create(verceltest.Var{Key: key, Value: value, Type: typ, Target: targets, Comment: comment})
		return err
	}
	return destinationtest.Fixture{
		Destination: d,
		Set: func(ctx context.Context, key, value string) error {
			if v, ok := srv.Find(key, targets); ok {
				srv.Update(v.ID, value)
				return nil
			}
			return create(key, value, vercel.Marker(owner))
		},
		Delete: func(ctx context.Context, key string) error {
			if v, ok := srv.Find(key, targets); ok {
				srv.Delete(v.ID)
			}
			return nil
		},
		SetUnowned: func(ctx context.Context, key, value string) error {
			return create(key, value, "")
		},
		Get: func(ctx context.Context, key string) (string, bool, error) {
			v, ok := srv.Find(key, targets)
			if !ok {
				return "", false, nil
			}
			return v.Value, true, nil
		},
	}, srv, d
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		so   verceltest.Options
		typ  string
	}{
		{"encrypted", verceltest.Options{TeamID: "team_conformance"}, vercel.TypeEncrypted},
		{"encrypted-paged-no-list-decrypt", verceltest.Options{PageSize: 2, ListIgnoresDecrypt: true}, vercel.TypeEncrypted},
		{"sensitive", verceltest.Options{TeamID: "team_conformance"}, vercel.TypeSensitive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			destinationtest.Run(t, destinationtest.Harness{
				Keys:         conformanceKeys,
				Capabilities: destination.Capabilities{NoCheckAndSet: true, WriteOnly: tc.typ == vercel.TypeSensitive},
				New: func(t *testing.T) destinationtest.Fixture {
					f, _, _ := fixture(t, tc.so, tc.typ)
					return f
				},
			})
		})
	}
}
