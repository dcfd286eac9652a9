package connection

import (
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The environment variables ConfigFromEnv reads, named as the Vault CLI
// names them.
const (
	EnvAddress       = "VAULT_ADDR"
	EnvAgentAddress  = "VAULT_AGENT_ADDR"
	EnvToken         = "VAULT_TOKEN"
	EnvNamespace     = "VAULT_NAMESPACE"
	EnvCACert        = "VAULT_CACERT"
	EnvCAPath        = "VAULT_CAPATH"
	EnvClientCert    = "VAULT_CLIENT_CERT"
	EnvClientKey     = "VAULT_CLIENT_KEY"
	EnvTLSServerName = "VAULT_TLS_SERVER_NAME"
	EnvSkipVerify    = "VAULT_SKIP_VERIFY"
	EnvClientTimeout = "VAULT_CLIENT_TIMEOUT"
	EnvMaxRetries    = "VAULT_MAX_RETRIES"
)

// DefaultAddress is the address ConfigFromEnv uses when neither VAULT_ADDR
// nor VAULT_AGENT_ADDR is set, as the Vault CLI does.
const DefaultAddress = "https://127.0.0.1:8200"

// ConfigFromEnv returns the Config that the standard VAULT_* environment
// variables describe, for programs that follow the Vault CLI's
// conventions. It reads them only through getenv, which the caller passes
// (os.Getenv for the process's environment, or a lookup in a map): nothing
// in this package reads them otherwise (see New). It does no I/O.
//
//   - VAULT_ADDR is Address (DefaultAddress when unset), an http or https
//     URL; VAULT_AGENT_ADDR, when set, takes its place, as in the CLI.
//   - VAULT_TOKEN, when set, is the token (Token, with the token as its
//     Credential's Value). When it is unset, neither AppRole nor Token is
//     set: the caller sets one before New, which otherwise refuses the
//     Config. The CLI's token helper (~/.vault-token) is not read.
//   - VAULT_NAMESPACE is Namespace.
//   - VAULT_CACERT, VAULT_CAPATH, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY and
//     VAULT_TLS_SERVER_NAME are the TLS settings of the same names (file
//     and directory names: New reads the files). VAULT_SKIP_VERIFY is a
//     boolean as strconv.ParseBool reads it ("1", "true", "0", "false",
//     ...), InsecureSkipVerify.
//   - VAULT_CLIENT_TIMEOUT is Timeout: whole seconds ("60") or a duration
//     ("1m30s").
//   - VAULT_MAX_RETRIES is how many times a request is retried; "0"
//     disables retries, as in the CLI (MaxRetries -1).
//
// An empty variable counts as unset. Other VAULT_* variables (such as
// VAULT_CACERT_BYTES, VAULT_HTTP_PROXY or VAULT_RATE_LIMIT) are not read.
//
// A malformed value is refused with a *ConfigError (errors.Is(err,
// ErrInvalidConfig)) naming the variable and what is wrong, never its
// value. The Config it returns prints the token as "*****".
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	if getenv == nil {
		return Config{}, &ConfigError{Field: "getenv", Reason: "nil: pass os.Getenv to read the process's environment"}
	}
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	bad := func(name, reason string) (Config, error) {
		return Config{}, &ConfigError{Field: name, Reason: reason}
	}
	var c Config

	addrVar, addr := EnvAddress, get(EnvAddress)
	if a := get(EnvAgentAddress); a != "" {
		addrVar, addr = EnvAgentAddress, a
	}
	if addr == "" {
		addr = DefaultAddress
	}
	if u, err := url.Parse(addr); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad(addrVar, "not an http or https URL")
	}
	c.Address = addr

	if tok := get(EnvToken); tok != "" {
		if !printable(tok) {
			return bad(EnvToken, "holds spaces or control characters")
		}
		c.Token = &Token{Token: Credential{Value: tok}}
	}
	c.Namespace = get(EnvNamespace)
	if !printable(c.Namespace) {
		return bad(EnvNamespace, "holds spaces or control characters")
	}

	c.TLS = TLS{
		CACert:     get(EnvCACert),
		CAPath:     get(EnvCAPath),
		ClientCert: get(EnvClientCert),
		ClientKey:  get(EnvClientKey),
		ServerName: get(EnvTLSServerName),
	}
	if (c.TLS.ClientCert == "") != (c.TLS.ClientKey == "") {
		return bad(EnvClientCert, "VAULT_CLIENT_CERT and VAULT_CLIENT_KEY go together")
	}
	if v := get(EnvSkipVerify); v != "" {
		skip, err := strconv.ParseBool(v)
		if err != nil {
			return bad(EnvSkipVerify, "not a boolean (1, t, true, 0, f, false)")
		}
		c.TLS.InsecureSkipVerify = skip
	}

	if v := get(EnvClientTimeout); v != "" {
		d, err := parseSeconds(v)
		if err != nil || d <= 0 {
			return bad(EnvClientTimeout, "not a positive number of seconds or duration (60, 1m30s)")
		}
		c.Timeout = d
	}
	if v := get(EnvMaxRetries); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return bad(EnvMaxRetries, "not a whole number of 0 or more")
		}
		c.MaxRetries = n
		if n == 0 {
			c.MaxRetries = -1
		}
	}
	return c, nil
}

// parseSeconds reads whole seconds ("60") or a duration ("1m30s").
func parseSeconds(v string) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n > int64(1<<63-1)/int64(time.Second) {
			return 0, strconv.ErrRange
		}
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}

// printable reports whether s holds no space or control character.
func printable(s string) bool {
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}
