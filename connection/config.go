package connection

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Redacted is what credentials print as.
const Redacted = "*****"

// Config describes a connection to a Vault server. Exactly one of AppRole
// and Token must be set.
//
// Printing a Config (fmt's %v, %+v, %#v, String, or JSON) shows every
// credential as "*****".
type Config struct {
	// Address is the server's URL, for example "https://vault.example.com:8200".
	Address string
	// Namespace is sent as X-Vault-Namespace on every request; empty means
	// the root namespace.
	Namespace string
	TLS       TLS
	// Timeout bounds each request to the server, its retries included; 0
	// means 30 seconds. A request that has no answer by then fails with an
	// *Error wrapping ErrUnreachable ("no answer within 30s"), not with a
	// context error: those come only from the caller's own context.
	Timeout time.Duration
	// MaxRetries is how many times a request answered with 429 or a 5xx
	// status (or not answered) is retried, within the caller's context and
	// Timeout. 0 means 4; a negative value disables retries. The wait
	// before a retry doubles from 250ms up to 5s, or is the server's
	// Retry-After (on 429 and 503) when it gives one. A Retry-After longer
	// than 5s, or past the request's deadline, is not waited for: the
	// answer is returned at once (ErrRateLimited for 429), so that the
	// caller can stop and come back later instead of holding a request.
	MaxRetries int

	AppRole *AppRole
	Token   *Token
}

// TLS configures the connection's TLS. Verification is on unless
// InsecureSkipVerify is set.
type TLS struct {
	CACert     string // PEM file of CA certificates
	CAPath     string // directory of PEM CA certificates
	ClientCert string // PEM file of the client certificate
	ClientKey  string // PEM file of the client key
	ServerName string // name to verify instead of the address's host
	// InsecureSkipVerify disables server certificate verification. For
	// development only.
	InsecureSkipVerify bool
}

// Credential is a secret given directly, read from a file, or read from a
// named environment variable: exactly one of Value, File and Env is set. A
// file or variable is read again at each use, so a rotated credential is
// picked up.
//
// A Credential prints as "*****" when it holds a Value; File and Env are
// names, not secrets, and print as they are.
type Credential struct {
	Value string
	File  string
	Env   string
}

// String describes the credential without its value.
func (c Credential) String() string {
	switch {
	case c.File != "":
		return fmt.Sprintf("file:%s", c.File)
	case c.Env != "":
		return fmt.Sprintf("env:%s", c.Env)
	case c.Value != "":
		return Redacted
	}
	return ""
}

// GoString is like String.
func (c Credential) GoString() string { return fmt.Sprintf("connection.Credential(%q)", c.String()) }

// MarshalJSON encodes the credential without its value.
func (c Credential) MarshalJSON() ([]byte, error) {
	m := map[string]string{}
	switch {
	case c.File != "":
		m["file"] = c.File
	case c.Env != "":
		m["env"] = c.Env
	case c.Value != "":
		m["value"] = Redacted
	}
	return json.Marshal(m)
}

func (c Credential) set() int {
	n := 0
	for _, s := range []string{c.Value, c.File, c.Env} {
		if s != "" {
			n++
		}
	}
	return n
}

// read returns the credential's current value.
func (c Credential) read() (string, error) {
	switch {
	case c.File != "":
		b, err := os.ReadFile(c.File)
		if err != nil {
			return "", fmt.Errorf("read credential file %s: %w", c.File, errors.Unwrap(err))
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("credential file %s is empty", c.File)
		}
		return v, nil
	case c.Env != "":
		v := strings.TrimSpace(os.Getenv(c.Env))
		if v == "" {
			return "", fmt.Errorf("credential variable %s is empty or unset", c.Env)
		}
		return v, nil
	}
	return c.Value, nil
}

// AppRole authenticates with Vault's AppRole method: role_id and secret_id
// are exchanged for a token when one is needed.
type AppRole struct {
	RoleID string
	// SecretID is the secret_id, or with Wrapped, a response-wrapping token
	// whose response holds the secret_id.
	SecretID Credential
	// Wrapped says SecretID is a response-wrapping token. A wrapping token
	// can be unwrapped only once: the connection unwraps it at its first
	// login and keeps the secret_id in memory for later logins. When the
	// credential comes from a file or variable whose content changes, the
	// new wrapping token is unwrapped at the next login.
	Wrapped bool
	// MountPath is where the AppRole method is mounted; "" means "approle".
	MountPath string
}

// String describes the AppRole method without its credentials.
func (a AppRole) String() string {
	return fmt.Sprintf("approle(mount=%s, role_id=%s, secret_id=%s, wrapped=%t)", a.mount(), Redacted, a.SecretID, a.Wrapped)
}

// GoString is like String.
func (a AppRole) GoString() string { return a.String() }

// MarshalJSON encodes the method without its credentials.
func (a AppRole) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		RoleID    string     `json:"role_id"`
		SecretID  Credential `json:"secret_id"`
		Wrapped   bool       `json:"wrapped,omitempty"`
		MountPath string     `json:"mount_path"`
	}{Redacted, a.SecretID, a.Wrapped, a.mount()})
}

func (a AppRole) mount() string {
	if a.MountPath == "" {
		return "approle"
	}
	return strings.Trim(a.MountPath, "/")
}

// Token authenticates with a token managed by the user. It is for
// development and for users who obtain and renew tokens themselves; the
// connection neither renews nor revokes it.
type Token struct {
	Token Credential
}

// String describes the method without the token.
func (t Token) String() string { return fmt.Sprintf("token(%s)", t.Token) }

// GoString is like String.
func (t Token) GoString() string { return t.String() }

// MarshalJSON encodes the method without the token.
func (t Token) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Token Credential `json:"token"`
	}{t.Token})
}

// Method returns "approle" or "token" ("" when neither is set).
func (c Config) Method() string {
	switch {
	case c.AppRole != nil:
		return "approle"
	case c.Token != nil:
		return "token"
	}
	return ""
}

// String describes the configuration with credentials redacted.
func (c Config) String() string {
	var auth string
	switch {
	case c.AppRole != nil:
		auth = c.AppRole.String()
	case c.Token != nil:
		auth = c.Token.String()
	}
	return fmt.Sprintf("vault(address=%s, namespace=%q, auth=%s)", c.Address, c.Namespace, auth)
}

// GoString is like String.
func (c Config) GoString() string { return c.String() }

// Format makes every fmt verb print the redacted form.
func (c Config) Format(f fmt.State, verb rune) { fmt.Fprint(f, c.String()) }

// MarshalJSON encodes the configuration with credentials redacted.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain struct {
		Address    string        `json:"address"`
		Namespace  string        `json:"namespace,omitempty"`
		TLS        TLS           `json:"tls"`
		Timeout    time.Duration `json:"timeout,omitempty"`
		MaxRetries int           `json:"max_retries,omitempty"`
		AppRole    *AppRole      `json:"approle,omitempty"`
		Token      *Token        `json:"token,omitempty"`
	}
	return json.Marshal(plain{c.Address, c.Namespace, c.TLS, c.Timeout, c.MaxRetries, c.AppRole, c.Token})
}

// validate checks the configuration without doing I/O.
func (c Config) validate() error {
	bad := func(field, reason string) error { return &ConfigError{Field: field, Reason: reason} }
	if c.Address == "" {
		return bad("Address", "missing")
	}
	u, err := url.Parse(c.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("Address", fmt.Sprintf("%q is not an http or https URL", c.Address))
	}
	if c.Timeout < 0 {
		return bad("Timeout", "negative")
	}
	if (c.TLS.ClientCert == "") != (c.TLS.ClientKey == "") {
		return bad("TLS", "ClientCert and ClientKey go together")
	}
	switch {
	case c.AppRole != nil && c.Token != nil:
		return bad("AppRole", "set AppRole or Token, not both")
	case c.AppRole != nil:
		if c.AppRole.RoleID == "" {
			return bad("AppRole.RoleID", "missing")
		}
		if c.AppRole.SecretID.set() != 1 {
			return bad("AppRole.SecretID", "set exactly one of Value, File and Env")
		}
	case c.Token != nil:
		if c.Token.Token.set() != 1 {
			return bad("Token.Token", "set exactly one of Value, File and Env")
		}
	default:
		return bad("AppRole", "no auth method: set AppRole or Token")
	}
	return nil
}
