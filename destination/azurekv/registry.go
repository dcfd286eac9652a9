package azurekv

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/registry"
)

// DriverOptions are the settings of Driver that a registry.AzureKeyVault
// config does not carry: how to reach the vault, mostly for tests.
type DriverOptions struct {
	// HTTPClient carries every request (Options.HTTPClient); for a local
	// server, azurekvtest.Server.HTTPClient.
	HTTPClient *http.Client
	// VaultURL, when set, replaces the config's KeyVaultURI.
	VaultURL string
	// AuthorityHost overrides the cloud's Microsoft Entra authority host
	// (Options.AuthorityHost).
	AuthorityHost string
	// Retry, PollInterval, WaitTimeout, Concurrency,
	// DisableChallengeResourceVerification and DisableInstanceDiscovery
	// are passed on to Options.
	Retry                                policy.RetryOptions
	PollInterval, WaitTimeout            time.Duration
	Concurrency                          int
	DisableChallengeResourceVerification bool
	DisableInstanceDiscovery             bool
}

// Driver returns the registry.Driver of the azure-kv destination type
// (registry.AzureKeyVault): it opens the vault at KeyVaultURI with the
// config's client credentials in its Cloud, with the Target's Owner as the
// ownership marker, the config's CustomTags on every version, and Purge.
// A nil options means the zero DriverOptions.
func Driver(options *DriverOptions) registry.Driver {
	var o DriverOptions
	if options != nil {
		o = *options
	}
	return func(ctx context.Context, t registry.Target) (destination.Destination, error) {
		var c registry.AzureKeyVault
		switch cfg := t.Config.(type) {
		case registry.AzureKeyVault:
			c = cfg
		case *registry.AzureKeyVault:
			if cfg == nil {
				return nil, fmt.Errorf("%w: no config", ErrInvalidOptions)
			}
			c = *cfg
		default:
			return nil, fmt.Errorf("%w: the azure-kv driver got a %T config", ErrInvalidOptions, t.Config)
		}
		return New(ctx, &Options{
			VaultURL:                             cmp.Or(o.VaultURL, c.KeyVaultURI),
			TenantID:                             c.TenantID,
			ClientID:                             c.ClientID,
			ClientSecret:                         c.ClientSecret,
			Cloud:                                c.Cloud,
			AuthorityHost:                        o.AuthorityHost,
			Owner:                                t.Owner,
			Tags:                                 c.CustomTags,
			Purge:                                c.Purge,
			HTTPClient:                           o.HTTPClient,
			Retry:                                o.Retry,
			PollInterval:                         o.PollInterval,
			WaitTimeout:                          o.WaitTimeout,
			Concurrency:                          o.Concurrency,
			DisableChallengeResourceVerification: o.DisableChallengeResourceVerification,
			DisableInstanceDiscovery:             o.DisableInstanceDiscovery,
		})
	}
}
