package ghactions_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/destinationtest"
	"github.com/secretsync/secretsync/destination/ghactions"
	"github.com/secretsync/secretsync/destination/ghactions/ghactionstest"
)

// keys are GitHub secret names, as NormalizeKey makes them.
var keys = []string{"DB_URL", "API_KEY_V2", "NESTED_PATH_KEY"}

var repoSeq atomic.Int64

// fixture opens a Destination over a fresh place of secrets of srv.
func fixture(t *testing.T, srv *ghactionstest.Server, loc ghactions.Location) (*ghactions.Destination, *ghactionstest.Secrets) {
	t.Helper()
	n := repoSeq.Add(1)
	opts := ghactions.Options{Token: srv.Token, BaseURL: srv.URL, HTTPClient: srv.Client(), Location: loc}
	var sc *ghactionstest.Secrets
	switch loc {
	case ghactions.OrganizationSecrets:
		opts.Organization = fmt.Sprintf("org-%d", n)
		sc = srv.AddOrganization(opts.Organization)
	case ghactions.EnvironmentSecrets:
		opts.Owner, opts.Repository, opts.Environment = "acme", fmt.Sprintf("repo-%d", n), "prod env"
		sc = srv.AddRepository(opts.Owner, opts.Repository).AddEnvironment(opts.Environment)
	default:
		opts.Owner, opts.Repository = "acme", fmt.Sprintf("repo-%d", n)
		sc = srv.AddRepository(opts.Owner, opts.Repository).Secrets()
	}
	d, err := ghactions.New(context.Background(), &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, sc
}

func TestConformance(t *testing.T) {
	for _, loc := range []ghactions.Location{ghactions.RepositorySecrets, ghactions.EnvironmentSecrets, ghactions.OrganizationSecrets} {
		t.Run(string(loc), func(t *testing.T) {
			// Every write gets an updated_at of its own, as writes more
			// than a second apart do on GitHub (see the package
			// documentation for what the one-second resolution leaves).
			srv := ghactionstest.NewServer(&ghactionstest.Options{Clock: ghactionstest.TickingClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))})
			t.Cleanup(srv.Close)
			destinationtest.Run(t, destinationtest.Harness{
				Keys:          keys,
				MaxValueBytes: ghactions.MaxValueSize,
				Capabilities:  destination.Capabilities{WriteOnly: true, NoCheckAndSet: true},
				New: func(t *testing.T) destinationtest.Fixture {
					d, sc := fixture(t, srv, loc)
					return destinationtest.Fixture{
						Destination: d,
						Set:         func(_ context.Context, k, v string) error { return sc.Set(k, v) },
						Delete:      func(_ context.Context, k string) error { sc.Delete(k); return nil },
						Get: func(_ context.Context, k string) (string, bool, error) {
							s, ok := sc.Get(k)
							return s.Value, ok, nil
						},
					}
				},
			})
		})
	}
}
