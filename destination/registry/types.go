package registry

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// Credential is a secret part of a destination's connection details: an
// access token, a client secret, a key. It prints, formats and encodes as
// "*****" (as Vault's /sys/sync API shows credentials), and as "" when
// empty; only Reveal returns the value.
type Credential string

const redacted = "*****"

// Reveal returns the credential's value, for the driver that connects
// with it.
func (c Credential) Reveal() string { return string(c) }

// String returns "*****", or "" for an empty credential.
func (c Credential) String() string {
	if c == "" {
		return ""
	}
	return redacted
}

// GoString is like String, so that %#v does not print the value either.
func (c Credential) GoString() string { return fmt.Sprintf("%q", c.String()) }

// Format makes every fmt verb print String.
func (c Credential) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, c.GoString())
		return
	}
	fmt.Fprint(f, c.String())
}

// MarshalText encodes the credential as String does, so that JSON, YAML
// and the like never hold the value.
func (c Credential) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Config is a destination's typed configuration. The built-in types are
// VaultKV, AWSSecretsManager, AzureKeyVault, GCPSecretManager,
// GitHubRepository and VercelProject; users add their own by implementing
// Config (a struct whose secret fields are of type Credential) and
// registering a Driver for its type.
type Config interface {
	// Type names the destination type, for example "aws-sm": lower-case
	// letters, digits and '-'.
	Type() string
	// Validate reports the first missing or malformed field as a
	// *ConfigError, without the field's value.
	Validate() error
}

// The built-in destination types.
const (
	TypeVaultKV           = "vault-kv"
	TypeAWSSecretsManager = "aws-sm"
	TypeAzureKeyVault     = "azure-kv"
	TypeGCPSecretManager  = "gcp-sm"
	TypeGitHubRepository  = "gh"
	TypeVercelProject     = "vercel-project"
)

// VaultKV is a HashiCorp Vault KV v2 destination (Vault to Vault). The
// Driver resolves Connection, a name the program gives its Vault
// connections; this package connects to nothing itself.
type VaultKV struct {
	Connection string `json:"connection"`
	Mount      string `json:"mount"`
	Path       string `json:"path,omitempty"`
	// Layout is "secret-path" (the default) or "secret-key", as in package
	// vaultkv.
	Layout string `json:"layout,omitempty"`
}

// Type returns TypeVaultKV.
func (VaultKV) Type() string { return TypeVaultKV }

// Validate checks that Connection and Mount are set and Layout is known.
func (c VaultKV) Validate() error {
	switch {
	case c.Connection == "":
		return missing(c, "connection")
	case c.Mount == "":
		return missing(c, "mount")
	case strings.Trim(c.Mount, "/") != c.Mount:
		return invalid(c, "mount", "has a leading or trailing '/'")
	case c.Layout != "" && c.Layout != "secret-path" && c.Layout != "secret-key":
		return invalid(c, "layout", fmt.Sprintf("%q is neither secret-path nor secret-key", c.Layout))
	}
	return nil
}

// AWSSecretsManager is an AWS Secrets Manager destination. With no access
// key, the driver uses the AWS default credential chain; with one, both
// parts must be set.
type AWSSecretsManager struct {
	AccessKeyID     Credential `json:"access_key_id,omitempty"`
	SecretAccessKey Credential `json:"secret_access_key,omitempty"`
	Region          string     `json:"region,omitempty"`
}

// Type returns TypeAWSSecretsManager.
func (AWSSecretsManager) Type() string { return TypeAWSSecretsManager }

var awsRegion = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)

// Validate checks that the access key is complete or absent and that
// Region looks like an AWS region.
func (c AWSSecretsManager) Validate() error {
	switch {
	case c.AccessKeyID != "" && c.SecretAccessKey == "":
		return invalid(c, "secret_access_key", "missing while access_key_id is set")
	case c.AccessKeyID == "" && c.SecretAccessKey != "":
		return invalid(c, "access_key_id", "missing while secret_access_key is set")
	case c.Region != "" && !awsRegion.MatchString(c.Region):
		return invalid(c, "region", fmt.Sprintf("%q is not an AWS region name", c.Region))
	}
	return nil
}

// AzureKeyVault is an Azure Key Vault destination, reached with an app
// registration's client credentials.
type AzureKeyVault struct {
	KeyVaultURI  string     `json:"key_vault_uri"`
	TenantID     string     `json:"tenant_id"`
	ClientID     string     `json:"client_id"`
	ClientSecret Credential `json:"client_secret"`
	// Cloud is the Azure cloud; empty means the public cloud.
	Cloud string `json:"cloud,omitempty"`
}

// Type returns TypeAzureKeyVault.
func (AzureKeyVault) Type() string { return TypeAzureKeyVault }

// Validate checks that every field but Cloud is set and that KeyVaultURI
// is an https URL.
func (c AzureKeyVault) Validate() error {
	switch {
	case c.KeyVaultURI == "":
		return missing(c, "key_vault_uri")
	case !isHTTPS(c.KeyVaultURI):
		return invalid(c, "key_vault_uri", "not an https:// URL")
	case c.TenantID == "":
		return missing(c, "tenant_id")
	case c.ClientID == "":
		return missing(c, "client_id")
	case c.ClientSecret == "":
		return missing(c, "client_secret")
	}
	return nil
}

// GCPSecretManager is a Google Cloud Secret Manager destination.
type GCPSecretManager struct {
	// Credentials is a service account's JSON key.
	Credentials Credential `json:"credentials"`
	// ProjectID overrides the project of the credentials.
	ProjectID string `json:"project_id,omitempty"`
}

// Type returns TypeGCPSecretManager.
func (GCPSecretManager) Type() string { return TypeGCPSecretManager }

// Validate checks that Credentials holds a JSON object.
func (c GCPSecretManager) Validate() error {
	if c.Credentials == "" {
		return missing(c, "credentials")
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(c.Credentials), &obj) != nil {
		return invalid(c, "credentials", "not a JSON object")
	}
	return nil
}

// GitHubRepository is a GitHub repository's Actions secrets.
type GitHubRepository struct {
	AccessToken     Credential `json:"access_token"`
	RepositoryOwner string     `json:"repository_owner"`
	RepositoryName  string     `json:"repository_name"`
}

// Type returns TypeGitHubRepository.
func (GitHubRepository) Type() string { return TypeGitHubRepository }

// Validate checks that every field is set.
func (c GitHubRepository) Validate() error {
	switch {
	case c.AccessToken == "":
		return missing(c, "access_token")
	case c.RepositoryOwner == "":
		return missing(c, "repository_owner")
	case c.RepositoryName == "":
		return missing(c, "repository_name")
	case strings.Contains(c.RepositoryOwner, "/") || strings.Contains(c.RepositoryName, "/"):
		return invalid(c, "repository_name", "owner and name are separate fields and hold no '/'")
	}
	return nil
}

// VercelProject is a Vercel project's environment variables.
type VercelProject struct {
	AccessToken Credential `json:"access_token"`
	ProjectID   string     `json:"project_id"`
	TeamID      string     `json:"team_id,omitempty"`
	// DeploymentEnvironments are some of "development", "preview" and
	// "production".
	DeploymentEnvironments []string `json:"deployment_environments"`
}

// Type returns TypeVercelProject.
func (VercelProject) Type() string { return TypeVercelProject }

// Validate checks the token, the project and the environments.
func (c VercelProject) Validate() error {
	switch {
	case c.AccessToken == "":
		return missing(c, "access_token")
	case c.ProjectID == "":
		return missing(c, "project_id")
	case len(c.DeploymentEnvironments) == 0:
		return missing(c, "deployment_environments")
	}
	for _, e := range c.DeploymentEnvironments {
		if !slices.Contains([]string{"development", "preview", "production"}, e) {
			return invalid(c, "deployment_environments", fmt.Sprintf("%q is none of development, preview, production", e))
		}
	}
	return nil
}

func isHTTPS(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != ""
}

func missing(c Config, field string) error {
	return &ConfigError{Type: c.Type(), Field: field, Reason: "missing"}
}

func invalid(c Config, field, reason string) error {
	return &ConfigError{Type: c.Type(), Field: field, Reason: reason}
}

// details returns the connection details of a config as Vault's
// /sys/sync API shows them: every exported field under its JSON name, with
// credentials obfuscated. Empty optional fields are left out.
func details(c Config) map[string]any {
	out := map[string]any{}
	v := reflect.ValueOf(c)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return out
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return out
	}
	t := v.Type()
	credType := reflect.TypeFor[Credential]()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fv := v.Field(i)
		if fv.IsZero() && strings.Contains(opts, "omitempty") {
			continue
		}
		switch {
		case f.Type == credType:
			out[name] = Credential(fv.String()).String()
		case fv.Kind() == reflect.String:
			out[name] = fv.String()
		default:
			// Numbers, booleans, lists; a Credential nested in them still
			// prints and encodes as "*****".
			out[name] = fv.Interface()
		}
	}
	return out
}
