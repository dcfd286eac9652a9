package main

import (
	"cmp"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/secretsync/secretsync/keyschema"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
)

// Config is the daemon's configuration file, in HCL. It never needs to hold
// a secret: credentials are read from files or environment variables that
// it names.
type Config struct {
	// Listen is the HTTP address; default 127.0.0.1:8080.
	Listen string `hcl:"listen,optional"`
	// ReadyGrace is how long an auto-synced sync may fail before /readyz
	// says the daemon is not ready; default 0: at once.
	ReadyGrace  string       `hcl:"ready_grace,optional"`
	State       *StateConfig `hcl:"state,block"`
	Audit       *AuditConfig `hcl:"audit,block"`
	Connections []ConnConfig `hcl:"connection,block"`
	Syncs       []SyncConfig `hcl:"sync,block"`
	// API serves the daemon's authenticated HTTP API (package httpapi) on
	// a listener of its own: the sync resources of every sync and, with a
	// registry block, Vault's /sys/sync API over the registry.
	API *APIConfig `hcl:"api,block"`
	// Registry serves a registry of destinations and associations, and
	// Vault's /sys/sync API over it.
	Registry   *RegistryConfig `hcl:"registry,block"`
	file       string          // path of the file
	syntax     *hclsyntax.Body // for positions in errors
	conns      map[string]*ConnConfig
	parsed     map[string]parsed // per sync, validated values
	readyGrace time.Duration
	// registryPoll is the registry's poll_interval; 0 means the
	// registry's default.
	registryPoll time.Duration
	// lock, set by a daemon with a registry and the state in Vault, is
	// the process's lock of the state store (see processLock).
	lock *processLock
}

// AuditConfig sends audit events to a file, one JSON object per line,
// instead of the log. The file is created with mode 0600 and opened again
// on SIGHUP, for log rotation.
type AuditConfig struct {
	File string `hcl:"file"`
}

// StateConfig says where baselines and status are kept: a local file (one
// daemon) or Vault KV v2 (replicas share it, with a lock per sync).
type StateConfig struct {
	File       string `hcl:"file,optional"`
	Connection string `hcl:"connection,optional"`
	Mount      string `hcl:"mount,optional"`
	Path       string `hcl:"path,optional"`
	LockTTL    string `hcl:"lock_ttl,optional"`
	// Transit seals the state file's fingerprint key with a Vault Transit
	// key (file only): the key file then holds only Transit ciphertext.
	Transit *TransitConfig `hcl:"transit,block"`
}

// TransitConfig names the Vault Transit key that seals the state file's
// fingerprint key.
type TransitConfig struct {
	Connection string `hcl:"connection"`
	Mount      string `hcl:"mount,optional"` // default "transit"
	Key        string `hcl:"key"`
}

// ConnConfig is a Vault connection.
type ConnConfig struct {
	Name          string         `hcl:"name,label"`
	Address       string         `hcl:"address"`
	Namespace     string         `hcl:"namespace,optional"`
	CACert        string         `hcl:"ca_cert,optional"`
	CAPath        string         `hcl:"ca_path,optional"`
	ClientCert    string         `hcl:"client_cert,optional"`
	ClientKey     string         `hcl:"client_key,optional"`
	ServerName    string         `hcl:"tls_server_name,optional"`
	TLSSkipVerify bool           `hcl:"tls_skip_verify,optional"`
	Timeout       string         `hcl:"timeout,optional"`
	AppRole       *AppRoleConfig `hcl:"approle,block"`
	Token         *TokenConfig   `hcl:"token,block"`
}

// AppRoleConfig logs in with AppRole; the secret_id comes from a file or an
// environment variable, read again at each login.
type AppRoleConfig struct {
	RoleID       string `hcl:"role_id"`
	SecretIDFile string `hcl:"secret_id_file,optional"`
	SecretIDEnv  string `hcl:"secret_id_env,optional"`
	Wrapped      bool   `hcl:"wrapped,optional"`
	Mount        string `hcl:"mount,optional"`
}

// TokenConfig uses a token from a file or an environment variable.
type TokenConfig struct {
	File string `hcl:"file,optional"`
	Env  string `hcl:"env,optional"`
}

// SyncConfig is one sync.
type SyncConfig struct {
	Name              string          `hcl:"name,label"`
	Description       string          `hcl:"description,optional"`
	Mode              string          `hcl:"mode,optional"`
	InitialSync       string          `hcl:"initial_sync,optional"`
	KeySchema         string          `hcl:"key_schema,optional"`
	Environment       string          `hcl:"environment,optional"`
	DisableDeletion   bool            `hcl:"disable_deletion,optional"`
	MaxDeleteFraction *float64        `hcl:"max_delete_fraction,optional"`
	AutoSync          *AutoSyncConfig `hcl:"auto_sync,block"`
	Source            SideConfig      `hcl:"source,block"`
	Destination       SideConfig      `hcl:"destination,block"`
}

// AutoSyncConfig configures Watch for a sync.
type AutoSyncConfig struct {
	Enabled  *bool  `hcl:"enabled,optional"`
	Interval string `hcl:"interval,optional"`
	Debounce string `hcl:"debounce,optional"`
}

// SideConfig is a source or destination: exactly one of its blocks.
type SideConfig struct {
	Vault  *VaultSideConfig  `hcl:"vault,block"`
	Dotenv *DotenvSideConfig `hcl:"dotenv,block"`
}

// VaultSideConfig is a KV v2 side.
type VaultSideConfig struct {
	Connection   string `hcl:"connection"`
	Mount        string `hcl:"mount"`
	Path         string `hcl:"path,optional"`
	Layout       string `hcl:"layout,optional"`
	Field        string `hcl:"field,optional"`
	PollInterval string `hcl:"poll_interval,optional"`
	AdoptUnowned bool   `hcl:"adopt_unowned,optional"`
}

// DotenvSideConfig is a dotenv file side.
type DotenvSideConfig struct {
	Path string `hcl:"path"`
}

// RegistryConfig is the registry block: a registry.Registry whose
// associations read KV v2 secrets over Connection and whose vault-kv
// destinations write over it too.
//
// With a state block, the registry keeps its destinations and
// associations (those declared here and those created over the API) in
// the state store, as a catalog (registry.Options.Catalog), with every
// credential sealed: by the Transit key of the transit block, or, with a
// state file and no transit block, by a key file beside the state file
// (<file>.catalog-key). With the state in Vault and no transit block, a
// destination that holds a credential is refused. Without a state block,
// the registry lives in memory.
type RegistryConfig struct {
	Connection   string                 `hcl:"connection"`
	PollInterval string                 `hcl:"poll_interval,optional"`
	Transit      *RegistryTransitConfig `hcl:"transit,block"`
	// API is the older place of the top-level api block, accepted for the
	// configurations that have it: the same listener, serving the same
	// API. A configuration gives one or the other.
	API          *APIConfig            `hcl:"api,block"`
	Destinations []RegistryDestConfig  `hcl:"destination,block"`
	Associations []RegistryAssocConfig `hcl:"association,block"`
}

// RegistryTransitConfig names the Vault Transit key, reached over the
// registry's connection, that seals the credentials of the registry's
// catalog.
type RegistryTransitConfig struct {
	Mount string `hcl:"mount,optional"` // default "transit"
	Key   string `hcl:"key"`
}

// APIConfig is the api block: the daemon's HTTP API (the sync resources
// under /v1/secretsync/, and Vault's /v1/sys/sync/ with a registry) on a
// listener of its own, with a bearer token read from TokenFile, and
// requests refused whose Host is not one of Hosts (default: the loopback
// names) or whose Origin is another site's.
type APIConfig struct {
	Listen                    string   `hcl:"listen,optional"` // default 127.0.0.1:8201
	TokenFile                 string   `hcl:"token_file"`
	TLSCert                   string   `hcl:"tls_cert,optional"`
	TLSKey                    string   `hcl:"tls_key,optional"`
	AllowPlaintextNonLoopback bool     `hcl:"allow_plaintext_non_loopback,optional"`
	Hosts                     []string `hcl:"hosts,optional"`
}

// RegistryDestConfig declares a destination of the registry. A vault-kv
// one (Mount, Path, Layout) writes over the registry's connection; one of
// the external types (aws-sm, azure-kv, gcp-sm, gh, vercel-project) has
// its typed config's fields (registry.AWSSecretsManager and the others,
// under their JSON names) as attributes, in Remain, and each credential
// field can be given as <field>_file or <field>_env instead.
type RegistryDestConfig struct {
	Type   string   `hcl:"type,label"`
	Name   string   `hcl:"name,label"`
	Mount  string   `hcl:"mount,optional"`
	Path   string   `hcl:"path,optional"`
	Layout string   `hcl:"layout,optional"`
	Remain hcl.Body `hcl:",remain"`
	ext    *extDecl // an external type's declaration, once validated
}

// RegistryAssocConfig declares an association of a KV v2 secret with a
// destination declared in the same file.
type RegistryAssocConfig struct {
	Type            string `hcl:"type,label"`
	Destination     string `hcl:"destination,label"`
	Mount           string `hcl:"mount"`
	SecretName      string `hcl:"secret_name"`
	KeySchema       string `hcl:"key_schema,optional"`
	DisableDeletion bool   `hcl:"disable_deletion,optional"`
}

// defaultAPIListen is the address of the API when the api block names
// none.
const defaultAPIListen = "127.0.0.1:8201"

// api returns the api block: the top-level one, or the registry's (its
// older place); nil when there is none.
func (c *Config) api() *APIConfig {
	if c.API != nil {
		return c.API
	}
	if c.Registry != nil {
		return c.Registry.API
	}
	return nil
}

// apiLabel names the api block in messages: "api", or "registry: api".
func (c *Config) apiLabel() string {
	if c.API == nil && c.Registry != nil && c.Registry.API != nil {
		return "registry: api"
	}
	return "api"
}

// parsed holds a sync's validated, typed settings.
type parsed struct {
	mode     sync.Mode
	initial  sync.InitialSync
	auto     sync.AutoSync
	srcPoll  time.Duration
	dstPoll  time.Duration
	srcLay   vaultkv.Layout
	dstLay   vaultkv.Layout
	fraction float64
}

// ConfigError lists what is wrong with a configuration file, each problem
// with its file, line and field.
type ConfigError struct {
	Diags hcl.Diagnostics
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	for i, d := range e.Diags {
		if i > 0 {
			b.WriteString("\n")
		}
		if d.Subject != nil {
			fmt.Fprintf(&b, "%s:%d,%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		b.WriteString(d.Summary)
		if d.Detail != "" {
			b.WriteString("; " + d.Detail)
		}
	}
	return b.String()
}

// LoadConfig reads, parses and validates a configuration file. It does no
// other I/O: a config that loads can still fail to connect.
func LoadConfig(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(path, src)
}

// ParseConfig parses and validates a configuration read from file.
func ParseConfig(file string, src []byte) (*Config, error) {
	f, diags := hclsyntax.ParseConfig(src, file, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		return nil, &ConfigError{Diags: diags}
	}
	var c Config
	if diags := gohcl.DecodeBody(f.Body, nil, &c); diags.HasErrors() {
		return nil, &ConfigError{Diags: diags}
	}
	c.file = file
	c.syntax = f.Body.(*hclsyntax.Body)
	if diags := c.validate(); diags.HasErrors() {
		return nil, &ConfigError{Diags: diags}
	}
	return &c, nil
}

// at returns the range of an attribute (or, without one, of the block)
// found by following blocks: at("sync", "app", "source", "", "vault", "", "mount").
func (c *Config) at(path ...string) *hcl.Range {
	body := c.syntax
	rng := body.SrcRange
	for len(path) >= 2 && body != nil {
		typ, label := path[0], path[1]
		var next *hclsyntax.Block
		for _, b := range body.Blocks {
			if b.Type == typ && (label == "" || (len(b.Labels) > 0 && b.Labels[0] == label)) {
				next = b
				break
			}
		}
		if next == nil {
			break
		}
		body, rng, path = next.Body, next.DefRange(), path[2:]
	}
	if len(path) == 1 && body != nil {
		if a, ok := body.Attributes[path[0]]; ok {
			r := a.SrcRange
			return &r
		}
	}
	return &rng
}

func (c *Config) validate() hcl.Diagnostics {
	var diags hcl.Diagnostics
	bad := func(rng *hcl.Range, summary string, args ...any) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf(summary, args...), Subject: rng})
	}
	duration := func(s string, rng *hcl.Range, what string) time.Duration {
		if s == "" {
			return 0
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			bad(rng, "%s: %q is not a positive duration (for example \"30s\")", what, s)
		}
		return d
	}

	c.readyGrace = 0
	if c.ReadyGrace != "" {
		d, err := time.ParseDuration(c.ReadyGrace)
		if err != nil || d < 0 {
			bad(c.at("ready_grace"), "ready_grace: %q is not a duration of 0 or more (for example \"5m\")", c.ReadyGrace)
		}
		c.readyGrace = max(d, 0)
	}
	if a := c.Audit; a != nil && a.File == "" {
		bad(c.at("audit", "", "file"), "audit: file is empty")
	}

	c.conns = map[string]*ConnConfig{}
	for i := range c.Connections {
		cc := &c.Connections[i]
		at := func(attr ...string) *hcl.Range { return c.at(append([]string{"connection", cc.Name}, attr...)...) }
		if _, dup := c.conns[cc.Name]; dup {
			bad(at(), "connection %q is declared twice", cc.Name)
		}
		c.conns[cc.Name] = cc
		if !strings.HasPrefix(cc.Address, "http://") && !strings.HasPrefix(cc.Address, "https://") {
			bad(at("address"), "connection %q: address %q must start with http:// or https://", cc.Name, cc.Address)
		}
		duration(cc.Timeout, at("timeout"), "connection "+cc.Name+": timeout")
		switch {
		case (cc.AppRole == nil) == (cc.Token == nil):
			bad(at(), "connection %q: give exactly one of an approle block or a token block", cc.Name)
		case cc.AppRole != nil:
			ar := cc.AppRole
			if ar.RoleID == "" {
				bad(at("approle", "", "role_id"), "connection %q: approle: role_id is empty", cc.Name)
			}
			if (ar.SecretIDFile == "") == (ar.SecretIDEnv == "") {
				bad(at("approle", ""), "connection %q: approle: give exactly one of secret_id_file or secret_id_env (the config never holds the secret_id itself)", cc.Name)
			}
		case cc.Token != nil:
			if (cc.Token.File == "") == (cc.Token.Env == "") {
				bad(at("token", ""), "connection %q: token: give exactly one of file or env (the config never holds the token itself)", cc.Name)
			}
		}
	}

	if s := c.State; s != nil {
		at := func(attr ...string) *hcl.Range { return c.at(append([]string{"state", ""}, attr...)...) }
		switch {
		case (s.File == "") == (s.Connection == ""):
			bad(at(), "state: give exactly one of file or connection")
		case s.Connection != "":
			if c.conns[s.Connection] == nil {
				bad(at("connection"), "state: unknown connection %q", s.Connection)
			}
			if s.Mount == "" {
				bad(at("mount"), "state: mount is required with a Vault connection")
			}
			duration(s.LockTTL, at("lock_ttl"), "state: lock_ttl")
		}
		if tr := s.Transit; tr != nil {
			switch {
			case s.File == "":
				bad(at("transit", ""), "state: transit seals the key of a state file; it needs file")
			case c.conns[tr.Connection] == nil:
				bad(at("transit", "", "connection"), "state: transit: unknown connection %q", tr.Connection)
			case tr.Key == "":
				bad(at("transit", "", "key"), "state: transit: key is empty")
			}
		}
	}

	c.parsed = map[string]parsed{}
	for i := range c.Syncs {
		sc := &c.Syncs[i]
		at := func(attr ...string) *hcl.Range { return c.at(append([]string{"sync", sc.Name}, attr...)...) }
		if _, dup := c.parsed[sc.Name]; dup {
			bad(at(), "sync %q is declared twice", sc.Name)
		}
		if !sync.ValidName(sc.Name) {
			bad(at(), "sync %q: not a valid name (1 to 64 lower-case letters, digits, '-' or '_')", sc.Name)
		}
		var p parsed
		if sc.Mode != "" {
			if err := p.mode.UnmarshalText([]byte(sc.Mode)); err != nil {
				bad(at("mode"), "sync %q: mode %q: want push, pull or bidirectional", sc.Name, sc.Mode)
			}
		}
		if sc.InitialSync != "" {
			if err := p.initial.UnmarshalText([]byte(sc.InitialSync)); err != nil {
				bad(at("initial_sync"), "sync %q: initial_sync %q: want auto, overwrite-destination, import-prefer-source or import-prefer-destination", sc.Name, sc.InitialSync)
			}
		}
		if sc.KeySchema != "" {
			if _, err := keyschema.Parse(sc.KeySchema); err != nil {
				bad(at("key_schema"), "sync %q: key_schema: %v", sc.Name, err)
			}
		}
		if sc.MaxDeleteFraction != nil {
			p.fraction = *sc.MaxDeleteFraction
			if p.fraction <= 0 || p.fraction > 1 {
				bad(at("max_delete_fraction"), "sync %q: max_delete_fraction %g is outside (0, 1]", sc.Name, p.fraction)
			}
		}
		if a := sc.AutoSync; a != nil {
			p.auto.Disabled = a.Enabled != nil && !*a.Enabled
			p.auto.Interval = duration(a.Interval, c.at("sync", sc.Name, "auto_sync", "", "interval"), "sync "+sc.Name+": auto_sync: interval")
			p.auto.Debounce = duration(a.Debounce, c.at("sync", sc.Name, "auto_sync", "", "debounce"), "sync "+sc.Name+": auto_sync: debounce")
		}
		side := func(which string, s SideConfig, lay *vaultkv.Layout, poll *time.Duration) {
			if (s.Vault == nil) == (s.Dotenv == nil) {
				bad(at(which, ""), "sync %q: %s: give exactly one of a vault block or a dotenv block", sc.Name, which)
				return
			}
			if v := s.Vault; v != nil {
				vat := func(attr string) *hcl.Range { return c.at("sync", sc.Name, which, "", "vault", "", attr) }
				if c.conns[v.Connection] == nil {
					bad(vat("connection"), "sync %q: %s: unknown connection %q", sc.Name, which, v.Connection)
				}
				if v.Layout != "" {
					if err := lay.UnmarshalText([]byte(v.Layout)); err != nil {
						bad(vat("layout"), "sync %q: %s: layout %q: want secret-path or secret-key", sc.Name, which, v.Layout)
					}
				}
				if *lay == vaultkv.SecretPath && strings.Trim(v.Path, "/") == "" {
					bad(vat("path"), "sync %q: %s: the secret-path layout needs a path", sc.Name, which)
				}
				*poll = duration(v.PollInterval, vat("poll_interval"), "sync "+sc.Name+": "+which+": poll_interval")
			}
			if d := s.Dotenv; d != nil && d.Path == "" {
				bad(c.at("sync", sc.Name, which, "", "dotenv", "", "path"), "sync %q: %s: dotenv path is empty", sc.Name, which)
			}
		}
		side("source", sc.Source, &p.srcLay, &p.srcPoll)
		side("destination", sc.Destination, &p.dstLay, &p.dstPoll)
		if p.mode != sync.Push && sc.Source.Dotenv == nil && sc.Source.Vault == nil {
			bad(at("mode"), "sync %q: %s needs a writable source", sc.Name, p.mode)
		}
		c.parsed[sc.Name] = p
	}
	c.validateRegistry(bad, duration)
	c.validateAPI(bad)
	if len(c.Syncs) == 0 && c.Registry == nil {
		bad(c.at(), "no sync block and no registry block: nothing to do")
	}
	return diags
}

// validateRegistry checks the registry block.
func (c *Config) validateRegistry(bad func(*hcl.Range, string, ...any), duration func(string, *hcl.Range, string) time.Duration) {
	rc := c.Registry
	if rc == nil {
		return
	}
	at := func(path ...string) *hcl.Range { return c.at(append([]string{"registry", ""}, path...)...) }
	if c.conns[rc.Connection] == nil {
		bad(at("connection"), "registry: unknown connection %q", rc.Connection)
	}
	c.registryPoll = duration(rc.PollInterval, at("poll_interval"), "registry: poll_interval")
	if tr := rc.Transit; tr != nil && tr.Key == "" {
		bad(at("transit", "", "key"), "registry: transit: key is empty")
	}
	declared := map[[2]string]bool{}
	for i := range rc.Destinations {
		d := &rc.Destinations[i]
		dat := func(attr string) *hcl.Range { return at("destination", d.Type, attr) }
		k := [2]string{d.Type, d.Name}
		if declared[k] {
			bad(dat(""), "registry: destination %s/%s is declared twice", d.Type, d.Name)
		}
		declared[k] = true
		if _, ok := externalTypes[d.Type]; ok {
			if d.ext = decodeExternal(d, bad); d.ext != nil {
				if err := d.ext.validateLiteral(); err != nil {
					bad(dat(""), "registry: destination %s/%s: %v", d.Type, d.Name, err)
				}
			}
			continue
		}
		if d.Type != registry.TypeVaultKV {
			bad(dat(""), "registry: destination %s/%s: unknown type %q (want %s or %s)", d.Type, d.Name, d.Type, registry.TypeVaultKV, externalTypeNames())
			continue
		}
		if attrs, _ := d.Remain.JustAttributes(); len(attrs) > 0 {
			for n, a := range attrs {
				bad(a.Range.Ptr(), "registry: destination %s/%s: %s is not an attribute of type %s", d.Type, d.Name, n, d.Type)
			}
		}
		if err := registryDest(rc, *d).Validate(); err != nil {
			bad(dat(""), "registry: destination %s/%s: %v", d.Type, d.Name, err)
		}
	}
	for _, a := range rc.Associations {
		aat := func(attr string) *hcl.Range { return at("association", a.Type, attr) }
		if !declared[[2]string{a.Type, a.Destination}] {
			bad(aat(""), "registry: association: destination %s/%s is not declared in this file", a.Type, a.Destination)
		}
		if a.Mount == "" || a.SecretName == "" {
			bad(aat(""), "registry: association with %s/%s: mount and secret_name are required", a.Type, a.Destination)
		}
		if a.KeySchema != "" {
			if _, err := keyschema.Parse(a.KeySchema); err != nil {
				bad(aat("key_schema"), "registry: association with %s/%s: key_schema: %v", a.Type, a.Destination, err)
			}
		}
	}
}

// validateAPI checks the api block, at the top level or in the registry
// block.
func (c *Config) validateAPI(bad func(*hcl.Range, string, ...any)) {
	a := c.api()
	if a == nil {
		return
	}
	path := []string{"api", ""}
	if c.API == nil {
		path = []string{"registry", "", "api", ""}
	} else if c.Registry != nil && c.Registry.API != nil {
		bad(c.at("registry", "", "api", ""), "registry: api: give one api block: the top-level one serves the registry's API too (registry { api } is its older place)")
	}
	aat := func(attr string) *hcl.Range { return c.at(append(slices.Clone(path), attr)...) }
	label := c.apiLabel()
	if a.TokenFile == "" {
		bad(aat("token_file"), "%s: token_file is empty (the API requires a token)", label)
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		bad(aat("tls_cert"), "%s: give both tls_cert and tls_key, or neither", label)
	}
	listen := cmp.Or(a.Listen, defaultAPIListen)
	host, _, err := net.SplitHostPort(listen)
	switch {
	case err != nil:
		bad(aat("listen"), "%s: listen %q: %v", label, listen, err)
	case a.TLSCert == "" && !a.AllowPlaintextNonLoopback && !loopbackHost(host):
		bad(aat("listen"), "%s: listen %q is beyond loopback: give tls_cert and tls_key, or set allow_plaintext_non_loopback = true", label, listen)
	}
	if c.Listen != "" && c.Listen == listen {
		bad(aat("listen"), "%s: listen %q is the daemon's listen address too", label, listen)
	}
	for _, h := range a.Hosts {
		if h == "" || strings.ContainsAny(h, "/ \t") {
			bad(aat("hosts"), "%s: hosts: %q is not a host name, address or host:port", label, h)
		}
	}
}

// registryDest is the Config of a declared destination: vault-kv, over
// the registry's connection.
func registryDest(rc *RegistryConfig, d RegistryDestConfig) registry.VaultKV {
	return registry.VaultKV{Connection: rc.Connection, Mount: d.Mount, Path: d.Path, Layout: d.Layout}
}

// loopbackHost reports whether host is "localhost" or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
