package gcpsm_test

import (
	"context"
	"os"
	"testing"

	"github.com/secretsync/secretsync/destination/gcpsm"
	"github.com/secretsync/secretsync/destination/gcpsm/gcpsmtest"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }

// newServer starts a gcpsmtest server for the test.
func newServer(t testing.TB, opts gcpsmtest.Options) *gcpsmtest.Server {
	t.Helper()
	srv, err := gcpsmtest.NewServer(&opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// open opens a Destination on srv with the service account "sync".
func open(t testing.TB, srv *gcpsmtest.Server, opts gcpsm.Options) *gcpsm.Destination {
	t.Helper()
	if opts.Credentials == nil {
		opts.Credentials = srv.ServiceAccountKey("sync")
	}
	opts.HTTPClient = srv.HTTPClient()
	opts.ClientOptions = append(srv.ClientOptions(), opts.ClientOptions...)
	d, err := gcpsm.New(context.Background(), &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// ownerLabels are the labels of a secret that a destination with owner
// created.
func ownerLabels(owner string) map[string]string {
	return map[string]string{gcpsm.LabelManagedBy: gcpsm.ManagedByValue, gcpsm.LabelOwner: gcpsm.OwnerLabel(owner)}
}
