package registry

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/sync"
)

// NameFields are what a name template can use, as in Vault's Secrets Sync:
// {{ .MountAccessor }}, {{ .SecretPath }}, {{ .SecretKey }} and the rest.
type NameFields struct {
	DestinationType string
	DestinationName string
	// MountAccessor is the KV mount's accessor (for example
	// "kv_1a2b3c4d"); the mount path when the source cannot tell it.
	MountAccessor string
	MountPath     string
	// SecretPath is the secret's path under its mount ("app/prod");
	// SecretBaseName its last segment ("prod").
	SecretPath     string
	SecretBaseName string
	// SecretKey is the key of the secret, with secret-key granularity;
	// empty with secret-path granularity.
	SecretKey string
}

// NameTemplate is a parsed name template: Go's text/template syntax over
// NameFields, with the filters uppercase, lowercase and replace (as in
// {{ .SecretPath | replace "/" "_" | uppercase }}). What it renders is then
// normalized to the store's naming rules by the destination
// (destination.KeyNormalizer).
type NameTemplate struct {
	src string
	t   *template.Template
}

var nameFuncs = template.FuncMap{
	"uppercase": strings.ToUpper,
	"lowercase": strings.ToLower,
	"replace":   func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
}

// DefaultNameTemplate returns the template of a destination whose
// SecretNameTemplate is empty: "vault/{{ .MountAccessor }}/{{ .SecretPath }}"
// with secret-path granularity, and the same followed by
// "/{{ .SecretKey }}" with secret-key granularity.
func DefaultNameTemplate(granularity string) string {
	if granularity == GranularitySecretKey {
		return "vault/{{ .MountAccessor }}/{{ .SecretPath }}/{{ .SecretKey }}"
	}
	return "vault/{{ .MountAccessor }}/{{ .SecretPath }}"
}

// ParseNameTemplate parses a name template. It refuses a template that
// does not parse, uses a field or function that does not exist, or renders
// an empty name.
func ParseNameTemplate(src string) (*NameTemplate, error) {
	t, err := template.New("name").Funcs(nameFuncs).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("cannot parse: %s", strings.TrimPrefix(err.Error(), "template: name:"))
	}
	for _, tt := range t.Templates() {
		if tt.Name() != "name" {
			return nil, errors.New("defines a template; a name template is one expression")
		}
		if err := plain(tt.Tree.Root); err != nil {
			return nil, err
		}
	}
	n := &NameTemplate{src: src, t: t}
	if _, err := n.Render(NameFields{DestinationType: "t", DestinationName: "d", MountAccessor: "kv_0", MountPath: "kv", SecretPath: "a/b", SecretBaseName: "b", SecretKey: "K"}); err != nil {
		return nil, err
	}
	return n, nil
}

// String returns the template's text.
func (n *NameTemplate) String() string { return n.src }

// usesSecretKey reports whether the rendered name depends on SecretKey.
func (n *NameTemplate) usesSecretKey() bool {
	f := NameFields{DestinationType: "t", DestinationName: "d", MountAccessor: "kv_0", MountPath: "kv", SecretPath: "a/b", SecretBaseName: "b"}
	f.SecretKey = "K1"
	a, err1 := n.Render(f)
	f.SecretKey = "K2"
	b, err2 := n.Render(f)
	return err1 == nil && err2 == nil && a != b
}

// usesAccessor reports whether the rendered name depends on MountAccessor.
func (n *NameTemplate) usesAccessor() bool {
	f := NameFields{DestinationType: "t", DestinationName: "d", MountAccessor: "kv_0", MountPath: "kv", SecretPath: "a/b", SecretBaseName: "b", SecretKey: "K"}
	a, err1 := n.Render(f)
	f.MountAccessor = "kv_1"
	b, err2 := n.Render(f)
	return err1 != nil || err2 != nil || a != b
}

// ErrEmptyName reports a name template that renders an empty name.
var ErrEmptyName = errors.New("registry: the name template renders an empty name")

// MaxNameBytes bounds what a name template may render, before the store's
// own, tighter, limit applies.
const MaxNameBytes = 4096

// errNameTooLong stops a template that renders more than MaxNameBytes.
var errNameTooLong = fmt.Errorf("the name is over %d bytes", MaxNameBytes)

// limited is a strings.Builder that refuses to grow beyond MaxNameBytes,
// so that a template such as {{ range 1000000000 }}x{{ end }} ends at once.
type limited struct{ strings.Builder }

func (l *limited) Write(p []byte) (int, error) {
	if l.Len()+len(p) > MaxNameBytes {
		return 0, errNameTooLong
	}
	return l.Builder.Write(p)
}

// Render renders the name of an entry.
func (n *NameTemplate) Render(f NameFields) (string, error) {
	var b limited
	if err := n.t.Execute(&b, f); err != nil {
		if errors.Is(err, errNameTooLong) {
			return "", fmt.Errorf("cannot render: %w", errNameTooLong)
		}
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return "", fmt.Errorf("cannot render: %s", msg)
	}
	if b.Len() == 0 {
		return "", ErrEmptyName
	}
	return b.String(), nil
}

// DefaultGranularity returns the granularity of a destination type whose
// SyncOptions leave it empty: secret-path for aws-sm, azure-kv and gcp-sm,
// as in Vault; secret-key for every other type.
func DefaultGranularity(typ string) string {
	switch typ {
	case TypeAWSSecretsManager, TypeAzureKeyVault, TypeGCPSecretManager:
		return GranularitySecretPath
	}
	return GranularitySecretKey
}

// nameTemplate returns the parsed name template of c, checking that with
// secret-key granularity it names each key of a secret apart.
func nameTemplate(c SyncConfig) (*NameTemplate, error) {
	o := c.SyncSettings()
	gran := cmp.Or(o.Granularity, DefaultGranularity(c.Type()))
	t, err := ParseNameTemplate(cmp.Or(o.SecretNameTemplate, DefaultNameTemplate(gran)))
	if err != nil {
		return nil, &ConfigError{Type: c.Type(), Field: "secret_name_template", Reason: err.Error()}
	}
	if gran == GranularitySecretKey && !t.usesSecretKey() {
		return nil, &ConfigError{Type: c.Type(), Field: "secret_name_template",
			Reason: "with secret-key granularity the template must use {{ .SecretKey }}, or every key of a secret gets one name"}
	}
	return t, nil
}

// MountAccessor is implemented by a source that knows the accessor of its
// KV mount (vaultkv does), for the {{ .MountAccessor }} of name templates.
type MountAccessor interface {
	MountAccessor() string
}

// naming returns the source and the KeyNamer of an association whose
// destination is named by template. With secret-path granularity the
// source becomes one key, the secret's name, whose value is the JSON
// object of the secret's keys.
func entryNaming(c SyncConfig, a Association, src destination.Reader, dst destination.Destination) (destination.Reader, sync.KeyNamer, error) {
	t, err := nameTemplate(c)
	if err != nil {
		return nil, nil, err
	}
	f := NameFields{
		DestinationType: a.Type, DestinationName: a.Destination,
		MountAccessor: a.Secret.Mount, MountPath: a.Secret.Mount,
		SecretPath: a.Secret.Name, SecretBaseName: path.Base(a.Secret.Name),
	}
	if m, ok := src.(MountAccessor); ok && m.MountAccessor() != "" {
		f.MountAccessor = m.MountAccessor()
	}
	norm, _ := dst.(destination.KeyNormalizer)
	perKey := cmp.Or(c.SyncSettings().Granularity, DefaultGranularity(c.Type())) == GranularitySecretKey
	namer := sync.KeyNamerFunc(func(k string) (string, error) {
		f := f
		if perKey {
			f.SecretKey = k
		}
		name, err := t.Render(f)
		if err != nil {
			return "", fmt.Errorf("%w: %v", destination.ErrInvalidKey, err)
		}
		if norm != nil {
			return norm.NormalizeKey(name)
		}
		return name, nil
	})
	if perKey {
		return src, namer, nil
	}
	return &wholeSecret{r: src, key: a.Secret.Name}, namer, nil
}

// wholeSecret is a secret read as one key, its name, whose value is the
// JSON object of its keys (secret-path granularity). A secret with no keys
// (deleted) has no key.
type wholeSecret struct {
	r   destination.Reader
	key string
}

// List returns the secret as one key, or none when it has no keys.
func (w *wholeSecret) List(ctx context.Context) (map[string]destination.Secret, error) {
	m, err := w.r.List(ctx)
	if err != nil || len(m) == 0 {
		return map[string]destination.Secret{}, err
	}
	obj := make(map[string]string, len(m))
	for k, s := range m {
		obj[k] = s.Value
	}
	// Keys sorted, and '<', '>' and '&' kept as they are: one secret, one
	// text, with no escapes beyond what JSON needs.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, err
	}
	return map[string]destination.Secret{w.key: {Value: strings.TrimSuffix(b.String(), "\n")}}, nil
}

// Close closes the secret's reader when it holds resources.
func (w *wholeSecret) Close() error {
	closeIfCloser(w.r)
	return nil
}

// plain refuses the actions a name does not need and that could run long:
// range (a loop) and template (a call, perhaps recursive).
func plain(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := plain(c); err != nil {
				return err
			}
		}
	case *parse.RangeNode:
		return errors.New("uses range; a name template has no loops")
	case *parse.TemplateNode:
		return errors.New("calls a template; a name template is one expression")
	case *parse.IfNode:
		return errors.Join(plain(n.List), plain(n.ElseList))
	case *parse.WithNode:
		return errors.Join(plain(n.List), plain(n.ElseList))
	}
	return nil
}
