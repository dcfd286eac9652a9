package registry

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
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

// ErrEmptyName reports a name template that renders an empty name.
var ErrEmptyName = errors.New("registry: the name template renders an empty name")

// Render renders the name of an entry.
func (n *NameTemplate) Render(f NameFields) (string, error) {
	var b strings.Builder
	if err := n.t.Execute(&b, f); err != nil {
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
