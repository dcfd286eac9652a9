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

// Granularities of an external destination.
const (
	// GranularitySecretPath writes the whole KV secret as one entry, a JSON
	// object of its keys.
	GranularitySecretPath = "secret-path"
	// GranularitySecretKey writes one entry per key of the KV secret.
	GranularitySecretKey = "secret-key"
)

// SyncOptions are the settings of an external destination that shape the
// entries its associations write, as in Vault's Secrets Sync. The built-in
// external types embed it; a program's own Config can embed it too, and
// its associations are then named by template rather than by key schema.
type SyncOptions struct {
	// Granularity is GranularitySecretPath or GranularitySecretKey; empty
	// means the type's default (secret-path for aws-sm, azure-kv and
	// gcp-sm, secret-key for gh and vercel-project and other types).
	Granularity string `json:"granularity,omitempty"`
	// SecretNameTemplate names each entry (see NameTemplate); empty means
	// DefaultNameTemplate of the granularity.
	SecretNameTemplate string `json:"secret_name_template,omitempty"`
	// CustomTags are set on every entry that an association writes, for
	// the stores that have tags or labels (aws-sm, azure-kv, gcp-sm).
	CustomTags map[string]string `json:"custom_tags,omitempty"`
}

// SyncSettings returns o; a Config that embeds SyncOptions gets the
// method, and with it naming by template.
func (o SyncOptions) SyncSettings() SyncOptions { return o }

// SyncConfig is a Config whose associations are named by template: one
// that embeds SyncOptions.
type SyncConfig interface {
	Config
	SyncSettings() SyncOptions
}

func (o SyncOptions) validate(c Config, tags bool) error {
	switch o.Granularity {
	case "", GranularitySecretPath, GranularitySecretKey:
	default:
		return invalid(c, "granularity", fmt.Sprintf("%q is neither %s nor %s", o.Granularity, GranularitySecretPath, GranularitySecretKey))
	}
	if o.SecretNameTemplate != "" {
		if _, err := ParseNameTemplate(o.SecretNameTemplate); err != nil {
			return invalid(c, "secret_name_template", err.Error())
		}
	}
	if len(o.CustomTags) > 0 && !tags {
		return invalid(c, "custom_tags", "this store has no tags")
	}
	for k := range o.CustomTags {
		if k == "" {
			return invalid(c, "custom_tags", "a tag has an empty name")
		}
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
	// RecoveryWindowDays is how long a deleted secret can be restored, 7
	// to 30 days; 0 means 30, AWS's default.
	RecoveryWindowDays int `json:"recovery_window_days,omitempty"`
	// ForceDelete deletes secrets at once, with no recovery window.
	ForceDelete bool `json:"force_delete,omitempty"`
	SyncOptions
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
	case c.AccessKeyID != "" && c.Region == "":
		return invalid(c, "region", "missing while access_key_id is set (with explicit credentials nothing is read from the environment)")
	case c.Region != "" && !awsRegion.MatchString(c.Region):
		return invalid(c, "region", fmt.Sprintf("%q is not an AWS region name", c.Region))
	case c.RecoveryWindowDays != 0 && (c.RecoveryWindowDays < 7 || c.RecoveryWindowDays > 30):
		return invalid(c, "recovery_window_days", fmt.Sprintf("%d is not between 7 and 30", c.RecoveryWindowDays))
	case c.RecoveryWindowDays != 0 && c.ForceDelete:
		return invalid(c, "force_delete", "set together with recovery_window_days")
	}
	return c.SyncOptions.validate(c, true)
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
	// Purge purges deleted secrets after the soft delete, so that nothing
	// can be recovered (the vault must allow purging).
	Purge bool `json:"purge,omitempty"`
	SyncOptions
}

// azureClouds are the names of the clouds AzureKeyVault.Cloud accepts, in
// lower case ("" is the public cloud).
var azureClouds = map[string]bool{
	"": true, "azurepublic": true, "azurepubliccloud": true, "azurecloud": true, "public": true,
	"azurechina": true, "azurechinacloud": true, "china": true,
	"azureusgovernment": true, "azureusgovernmentcloud": true, "azuregovernment": true, "usgovernment": true,
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
	case !azureClouds[strings.ToLower(c.Cloud)]:
		return invalid(c, "cloud", fmt.Sprintf("%q is none of AzurePublic, AzureChina, AzureUSGovernment", c.Cloud))
	case len(c.CustomTags) > 13:
		return invalid(c, "custom_tags", fmt.Sprintf("%d tags; Key Vault keeps 15 per secret, 2 of them the ownership marker", len(c.CustomTags)))
	}
	for k, v := range c.CustomTags {
		if len(k) > 512 || len(v) > 256 {
			return invalid(c, "custom_tags", "a tag name over 512 or a value over 256 characters")
		}
	}
	return c.SyncOptions.validate(c, true)
}

// GCPSecretManager is a Google Cloud Secret Manager destination.
type GCPSecretManager struct {
	// Credentials is a service account's JSON key, or "@" and the path of
	// a file that holds it.
	Credentials Credential `json:"credentials"`
	// ProjectID overrides the project of the credentials.
	ProjectID string `json:"project_id,omitempty"`
	SyncOptions
}

// Type returns TypeGCPSecretManager.
func (GCPSecretManager) Type() string { return TypeGCPSecretManager }

// Validate checks that Credentials holds a JSON object or names a file.
func (c GCPSecretManager) Validate() error {
	if c.Credentials == "" {
		return missing(c, "credentials")
	}
	if path, ok := strings.CutPrefix(c.Credentials.Reveal(), "@"); ok {
		if path == "" {
			return invalid(c, "credentials", "'@' names no file")
		}
	} else {
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(c.Credentials), &obj) != nil {
			return invalid(c, "credentials", "neither a JSON object nor '@' and a file")
		}
	}
	return c.SyncOptions.validate(c, true)
}

// Where a GitHubRepository destination keeps its secrets.
const (
	GitHubRepositorySecrets   = "repository"
	GitHubEnvironmentSecrets  = "environment"
	GitHubOrganizationSecrets = "organization"
)

// GitHubRepository is GitHub Actions secrets: a repository's (the
// default), one of its environments', or an organization's.
type GitHubRepository struct {
	AccessToken     Credential `json:"access_token"`
	RepositoryOwner string     `json:"repository_owner,omitempty"`
	RepositoryName  string     `json:"repository_name,omitempty"`
	// SecretsLocation is "repository" (the default), "environment" or
	// "organization".
	SecretsLocation string `json:"secrets_location,omitempty"`
	// EnvironmentName is the repository's environment, for "environment".
	EnvironmentName string `json:"environment_name,omitempty"`
	// OrganizationName is the organization, for "organization".
	OrganizationName string `json:"organization_name,omitempty"`
	// OrganizationVisibility is "all", "private" (the default) or
	// "selected", for "organization".
	OrganizationVisibility string `json:"organization_visibility,omitempty"`
	// SelectedRepositoryIDs are the repositories that may use the
	// secrets, with visibility "selected".
	SelectedRepositoryIDs []int64 `json:"selected_repository_ids,omitempty"`
	SyncOptions
}

// Type returns TypeGitHubRepository.
func (GitHubRepository) Type() string { return TypeGitHubRepository }

// Validate checks that the fields of the secrets' location are set, and
// only those.
func (c GitHubRepository) Validate() error {
	if c.AccessToken == "" {
		return missing(c, "access_token")
	}
	switch c.SecretsLocation {
	case "", GitHubRepositorySecrets, GitHubEnvironmentSecrets:
		switch {
		case c.RepositoryOwner == "":
			return missing(c, "repository_owner")
		case c.RepositoryName == "":
			return missing(c, "repository_name")
		case strings.Contains(c.RepositoryOwner, "/") || strings.Contains(c.RepositoryName, "/"):
			return invalid(c, "repository_name", "owner and name are separate fields and hold no '/'")
		case c.SecretsLocation == GitHubEnvironmentSecrets && c.EnvironmentName == "":
			return missing(c, "environment_name")
		case c.SecretsLocation != GitHubEnvironmentSecrets && c.EnvironmentName != "":
			return invalid(c, "environment_name", "set while secrets_location is not environment")
		case c.OrganizationName != "" || c.OrganizationVisibility != "" || len(c.SelectedRepositoryIDs) > 0:
			return invalid(c, "organization_name", "organization fields set while secrets_location is not organization")
		}
	case GitHubOrganizationSecrets:
		switch {
		case c.OrganizationName == "":
			return missing(c, "organization_name")
		case strings.Contains(c.OrganizationName, "/"):
			return invalid(c, "organization_name", "holds a '/'")
		case c.RepositoryName != "" || c.EnvironmentName != "":
			return invalid(c, "repository_name", "repository fields set while secrets_location is organization")
		}
		switch c.OrganizationVisibility {
		case "", "all", "private":
			if len(c.SelectedRepositoryIDs) > 0 {
				return invalid(c, "selected_repository_ids", "set while organization_visibility is not selected")
			}
		case "selected":
		default:
			return invalid(c, "organization_visibility", fmt.Sprintf("%q is none of all, private, selected", c.OrganizationVisibility))
		}
	default:
		return invalid(c, "secrets_location", fmt.Sprintf("%q is none of repository, environment, organization", c.SecretsLocation))
	}
	return c.SyncOptions.validate(c, false)
}

// VercelProject is a Vercel project's environment variables.
type VercelProject struct {
	AccessToken Credential `json:"access_token"`
	ProjectID   string     `json:"project_id"`
	TeamID      string     `json:"team_id,omitempty"`
	// DeploymentEnvironments are some of "development", "preview" and
	// "production".
	DeploymentEnvironments []string `json:"deployment_environments"`
	// VariableType is "encrypted" (the default: values can be read back)
	// or "sensitive" (values cannot be read back once written).
	VariableType string `json:"variable_type,omitempty"`
	SyncOptions
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
	if c.VariableType != "" && c.VariableType != "encrypted" && c.VariableType != "sensitive" {
		return invalid(c, "variable_type", fmt.Sprintf("%q is neither encrypted nor sensitive", c.VariableType))
	}
	if c.VariableType == "sensitive" && slices.Contains(c.DeploymentEnvironments, "development") {
		return invalid(c, "deployment_environments", "sensitive variables cannot target development (Vercel refuses it)")
	}
	return c.SyncOptions.validate(c, false)
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
	addFields(out, v)
	return out
}

func addFields(out map[string]any, v reflect.Value) {
	t := v.Type()
	credType := reflect.TypeFor[Credential]()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("json") == "" {
			addFields(out, v.Field(i)) // as encoding/json flattens it
			continue
		}
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
}
