package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/secretsync/secretsync/registry"
)

// The external destination types a registry block can declare, each with
// its typed config (whose JSON field names are the block's attributes).
var externalTypes = map[string]reflect.Type{
	registry.TypeAWSSecretsManager: reflect.TypeFor[registry.AWSSecretsManager](),
	registry.TypeAzureKeyVault:     reflect.TypeFor[registry.AzureKeyVault](),
	registry.TypeGCPSecretManager:  reflect.TypeFor[registry.GCPSecretManager](),
	registry.TypeGitHubRepository:  reflect.TypeFor[registry.GitHubRepository](),
	registry.TypeVercelProject:     reflect.TypeFor[registry.VercelProject](),
}

// externalTypeNames lists externalTypes' names, sorted.
func externalTypeNames() string {
	var names []string
	for n := range externalTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

var credentialType = reflect.TypeFor[registry.Credential]()

// configFields maps the JSON names of a config type's fields (those of
// embedded structs, such as SyncOptions, included) to their index.
func configFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for _, f := range reflect.VisibleFields(t) {
		if f.Anonymous || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Index
	}
	return out
}

// credSource is where a credential field of a declared destination is
// read from when the destination is built: a file (its content, trimmed
// of surrounding space) or an environment variable.
type credSource struct {
	field string
	index []int
	file  string
	env   string
}

// extDecl is an external destination declared in the file, as loaded: its
// config without the credentials that come from files or variables, and
// where those come from. Loading reads neither.
type extDecl struct {
	partial  registry.Config // of the config type, credentials from files and variables unset
	creds    []credSource
	literals []string // credential fields given in the file itself
}

// decodeExternal decodes the attributes of an external destination block
// into its config type: each attribute is a field under its JSON name; a
// credential field (of type registry.Credential) can instead be given as
// <field>_file or <field>_env.
func decodeExternal(d *RegistryDestConfig, bad func(*hcl.Range, string, ...any)) *extDecl {
	t := externalTypes[d.Type]
	what := "registry: destination " + d.Type + "/" + d.Name
	if d.Mount != "" || d.Path != "" || d.Layout != "" {
		bad(d.Remain.MissingItemRange().Ptr(), "%s: mount, path and layout are vault-kv's attributes", what)
	}
	attrs, diags := d.Remain.JustAttributes()
	if diags.HasErrors() {
		for _, dg := range diags {
			bad(dg.Subject, "%s: %s", what, dg.Summary)
		}
		return nil
	}
	fields := configFields(t)
	x := &extDecl{}
	pv := reflect.New(t).Elem()
	defer func() { x.partial = pv.Interface().(registry.Config) }()
	given := map[string]string{} // credential field -> the attribute that gave it
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := attrs[n]
		if idx, ok := fields[n]; ok {
			f := pv.FieldByIndex(idx)
			v := reflect.New(f.Type())
			if diags := gohcl.DecodeExpression(a.Expr, nil, v.Interface()); diags.HasErrors() {
				bad(a.Range.Ptr(), "%s: %s: %s", what, n, diags[0].Summary)
				continue
			}
			f.Set(v.Elem())
			if f.Type() == credentialType {
				x.literals = append(x.literals, n)
				if prev := given[n]; prev != "" {
					bad(a.Range.Ptr(), "%s: give one of %s and %s", what, prev, n)
				}
				given[n] = n
			}
			continue
		}
		base, kind := "", ""
		if b, ok := strings.CutSuffix(n, "_file"); ok {
			base, kind = b, "file"
		} else if b, ok := strings.CutSuffix(n, "_env"); ok {
			base, kind = b, "env"
		}
		idx, ok := fields[base]
		if kind == "" || !ok || pv.FieldByIndex(idx).Type() != credentialType {
			bad(a.Range.Ptr(), "%s: %s is not an attribute of type %s", what, n, d.Type)
			continue
		}
		var s string
		if diags := gohcl.DecodeExpression(a.Expr, nil, &s); diags.HasErrors() || s == "" {
			bad(a.Range.Ptr(), "%s: %s: want a non-empty string", what, n)
			continue
		}
		if prev := given[base]; prev != "" {
			bad(a.Range.Ptr(), "%s: give one of %s and %s", what, prev, n)
		}
		given[base] = n
		cs := credSource{field: base, index: idx}
		if kind == "file" {
			cs.file = s
		} else {
			cs.env = s
		}
		x.creds = append(x.creds, cs)
	}
	return x
}

// resolve returns the declared config with its credentials read from
// their files and variables, validated. Its errors name fields, files and
// variables, never a value.
func (x *extDecl) resolve() (registry.Config, error) {
	v := reflect.New(reflect.TypeOf(x.partial)).Elem()
	v.Set(reflect.ValueOf(x.partial))
	for _, cs := range x.creds {
		if err := checkCredential(cs.file, cs.env); err != nil {
			return nil, fmt.Errorf("%s: %w", cs.field, err)
		}
		var val string
		if cs.file != "" {
			b, err := os.ReadFile(cs.file)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", cs.field, err)
			}
			val = strings.TrimSpace(string(b))
		} else {
			val = strings.TrimSpace(os.Getenv(cs.env))
		}
		v.FieldByIndex(cs.index).SetString(val)
	}
	cfg := v.Interface().(registry.Config)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// validateLiteral validates a declaration whose credentials are all in
// the file: nothing to read, so the load can check it whole.
func (x *extDecl) validateLiteral() error {
	if len(x.creds) > 0 {
		return nil
	}
	_, err := x.resolve()
	return err
}

// declaredConfig is the registry.Config of a declared destination,
// credentials read.
func declaredConfig(rc *RegistryConfig, d RegistryDestConfig) (registry.Config, error) {
	if d.Type == registry.TypeVaultKV {
		return registryDest(rc, d), nil
	}
	if d.ext == nil {
		return nil, errors.New("not loaded")
	}
	return d.ext.resolve()
}

// checkLiteralCredentials reports a configuration file that holds a
// credential of a declared destination and can be read by others than
// its owner: such a file must be mode 0600 (or stricter).
func checkLiteralCredentials(cfg *Config) error {
	var lit []string
	if rc := cfg.Registry; rc != nil {
		for _, d := range rc.Destinations {
			if d.ext != nil {
				for _, f := range d.ext.literals {
					lit = append(lit, d.Type+"/"+d.Name+" "+f)
				}
			}
		}
	}
	if len(lit) == 0 {
		return nil
	}
	fi, err := os.Stat(cfg.file)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s holds credentials (%s) and has mode %04o: make it 0600, or use <field>_file or <field>_env",
			cfg.file, strings.Join(lit, ", "), fi.Mode().Perm())
	}
	return nil
}
