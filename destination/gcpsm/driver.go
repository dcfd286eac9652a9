package gcpsm

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"google.golang.org/api/option"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/registry"
)

// DriverOptions are what Driver adds to a destination's registry.Config:
// where to connect, for tests and private endpoints. The zero value
// connects to Secret Manager's global endpoint.
type DriverOptions struct {
	// Endpoint, HTTPClient, ClientOptions, PageSize and Concurrency are
	// as in Options.
	Endpoint      string
	HTTPClient    *http.Client
	ClientOptions []option.ClientOption
	PageSize      int
	Concurrency   int
	// ReadFile reads the key file of credentials given as "@path"; nil
	// means os.ReadFile.
	ReadFile func(path string) ([]byte, error)
}

// Driver returns the registry.Driver of the type registry.TypeGCPSecretManager
// ("gcp-sm"). It opens a Destination from a registry.GCPSecretManager:
// Credentials (the key's JSON, or "@" and the path of a file that holds
// it, read when the destination is opened), ProjectID, and CustomTags as
// Labels; the Target's Owner is the Owner. Granularity and the name
// template are the registry's business: it names the secrets and passes
// each name through NormalizeKey.
// A nil options means the zero DriverOptions.
func Driver(options *DriverOptions) registry.Driver {
	var o DriverOptions
	if options != nil {
		o = *options
	}
	return func(ctx context.Context, t registry.Target) (destination.Destination, error) {
		var cfg registry.GCPSecretManager
		switch c := t.Config.(type) {
		case registry.GCPSecretManager:
			cfg = c
		case *registry.GCPSecretManager:
			if c == nil {
				return nil, fmt.Errorf("gcpsm: destination %s: nil config", t.Name)
			}
			cfg = *c
		default:
			return nil, fmt.Errorf("gcpsm: destination %s: config of type %T, not registry.GCPSecretManager", t.Name, t.Config)
		}
		creds := []byte(cfg.Credentials.Reveal())
		if path, ok := strings.CutPrefix(cfg.Credentials.Reveal(), "@"); ok {
			read := o.ReadFile
			if read == nil {
				read = os.ReadFile
			}
			b, err := read(path)
			if err != nil {
				return nil, fmt.Errorf("gcpsm: destination %s: read the credentials file: %w", t.Name, err)
			}
			creds = b
		}
		d, err := New(ctx, &Options{
			Credentials:   creds,
			ProjectID:     cfg.ProjectID,
			Owner:         t.Owner,
			Labels:        cfg.CustomTags,
			Endpoint:      o.Endpoint,
			HTTPClient:    o.HTTPClient,
			ClientOptions: o.ClientOptions,
			PageSize:      o.PageSize,
			Concurrency:   o.Concurrency,
		})
		if err != nil {
			return nil, fmt.Errorf("destination %s: %w", t.Name, err)
		}
		return d, nil
	}
}
