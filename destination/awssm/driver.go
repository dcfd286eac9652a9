package awssm

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/registry"
)

// DriverOptions are what Driver adds to a registry.AWSSecretsManager
// config: the means to reach a server other than AWS's, for tests. The
// zero value reaches AWS.
type DriverOptions struct {
	// Endpoint, HTTPClient and ClientOptions are copied into Options.
	Endpoint      string
	HTTPClient    *http.Client
	ClientOptions []func(*secretsmanager.Options)
}

// Driver returns the registry.Driver of the aws-sm destination type
// (registry.AWSSecretsManager): it opens a Destination with the config's
// access key (or, without one, the AWS default configuration), region,
// recovery window or force delete, and custom tags, owned by the
// Target's Owner.
// A nil options means the zero DriverOptions.
func Driver(options *DriverOptions) registry.Driver {
	var o DriverOptions
	if options != nil {
		o = *options
	}
	return func(ctx context.Context, t registry.Target) (destination.Destination, error) {
		c, ok := t.Config.(registry.AWSSecretsManager)
		if !ok {
			if p, isPtr := t.Config.(*registry.AWSSecretsManager); isPtr && p != nil {
				c, ok = *p, true
			}
		}
		if !ok {
			return nil, fmt.Errorf("awssm: driver got a %T config, want registry.AWSSecretsManager", t.Config)
		}
		return New(ctx, &Options{
			Region:             c.Region,
			AccessKeyID:        c.AccessKeyID.Reveal(),
			SecretAccessKey:    c.SecretAccessKey.Reveal(),
			Endpoint:           o.Endpoint,
			HTTPClient:         o.HTTPClient,
			ClientOptions:      o.ClientOptions,
			Owner:              t.Owner,
			Tags:               c.CustomTags,
			RecoveryWindowDays: c.RecoveryWindowDays,
			ForceDelete:        c.ForceDelete,
		})
	}
}
