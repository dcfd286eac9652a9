package ghactions

import (
	"context"
	"fmt"
	"net/http"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/registry"
)

// DriverOptions are what the registry's typed config does not hold: where
// to reach GitHub, for GitHub Enterprise Server and for tests.
type DriverOptions struct {
	// BaseURL is Options.BaseURL for every destination the driver opens;
	// empty means https://api.github.com/.
	BaseURL string
	// HTTPClient is Options.HTTPClient for every destination the driver
	// opens.
	HTTPClient *http.Client
}

// Driver returns the registry.Driver of the gh destination type
// (registry.GitHubRepository). It opens a Destination for the config's
// secrets location: the repository's secrets (the default), an
// environment's, or an organization's with its visibility and selected
// repository ids. The Target's Owner is not used: GitHub keeps no marker
// on a secret (see the package documentation).
// A nil options means the zero DriverOptions.
func Driver(options *DriverOptions) registry.Driver {
	var o DriverOptions
	if options != nil {
		o = *options
	}
	return func(ctx context.Context, t registry.Target) (destination.Destination, error) {
		c, ok := t.Config.(registry.GitHubRepository)
		if !ok {
			if p, isPtr := t.Config.(*registry.GitHubRepository); isPtr && p != nil {
				c, ok = *p, true
			}
		}
		if !ok {
			return nil, fmt.Errorf("%w: the gh driver got a %T config", ErrInvalidOptions, t.Config)
		}
		opts, err := optionsOf(c)
		if err != nil {
			return nil, err
		}
		opts.BaseURL, opts.HTTPClient = o.BaseURL, o.HTTPClient
		return New(ctx, &opts)
	}
}

// optionsOf maps a registry config onto Options.
func optionsOf(c registry.GitHubRepository) (Options, error) {
	opts := Options{Token: c.AccessToken.Reveal()}
	switch c.SecretsLocation {
	case "", registry.GitHubRepositorySecrets:
		opts.Location, opts.Owner, opts.Repository = RepositorySecrets, c.RepositoryOwner, c.RepositoryName
	case registry.GitHubEnvironmentSecrets:
		opts.Location, opts.Owner, opts.Repository, opts.Environment = EnvironmentSecrets, c.RepositoryOwner, c.RepositoryName, c.EnvironmentName
	case registry.GitHubOrganizationSecrets:
		opts.Location, opts.Organization = OrganizationSecrets, c.OrganizationName
		opts.Visibility, opts.SelectedRepositoryIDs = c.OrganizationVisibility, c.SelectedRepositoryIDs
	default:
		return Options{}, fmt.Errorf("%w: secrets_location %q is none of repository, environment, organization", ErrInvalidOptions, c.SecretsLocation)
	}
	if len(c.CustomTags) > 0 {
		return Options{}, fmt.Errorf("%w: custom_tags: GitHub Actions secrets have no tags", ErrInvalidOptions)
	}
	return opts, nil
}
