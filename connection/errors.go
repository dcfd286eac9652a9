package connection

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/hashicorp/vault/api"
)

// Sentinel errors, checked with errors.Is. Every error from this package
// that concerns a request is an *Error wrapping one of them (or the
// underlying error when none applies), except context errors, which are
// returned as they are when the caller's context has ended.
//
// ErrUnreachable, ErrSealed and ErrRateLimited say that the server as a
// whole cannot serve now: the outcome of a write that failed with them is
// unknown, and a caller does better to stop and try again later than to go
// on request by request.
var (
	// ErrInvalidConfig: the Config was refused; the error is a *ConfigError.
	ErrInvalidConfig = errors.New("vault: invalid connection config")
	// ErrUnreachable: no answer from the server: connection refused, DNS,
	// or no answer within the connection's Timeout (the *Error says "no
	// answer within 30s"; it is not a context error, which only the
	// caller's own context produces). Retrying later is safe.
	ErrUnreachable = errors.New("vault: server unreachable")
	// ErrTLS: the TLS handshake or certificate verification failed.
	ErrTLS = errors.New("vault: TLS failure")
	// ErrInvalidCredentials: the login was refused (invalid role_id,
	// secret_id, wrapping token or token).
	ErrInvalidCredentials = errors.New("vault: invalid credentials")
	// ErrTokenInvalid: the connection's token was revoked or has expired
	// and the connection cannot replace it: it is the user's (Config.Token),
	// whose Credential still yields the dead token. It is a kind of
	// ErrInvalidCredentials (errors.Is matches both), never
	// ErrPermissionDenied. An AppRole connection logs in again instead; when
	// that login fails, its error (ErrInvalidCredentials, ErrUnreachable,
	// ...) is returned and says that the token was revoked or expired.
	ErrTokenInvalid error = &kind{msg: "vault: token revoked or expired", of: ErrInvalidCredentials}
	// ErrPermissionDenied: the token works but lacks a capability on a
	// path; the *Error names both, and the capabilities the token has there
	// when Vault tells them.
	ErrPermissionDenied = errors.New("vault: permission denied")
	// ErrSealed: the server is sealed. Retrying after it is unsealed is safe.
	ErrSealed = errors.New("vault: server is sealed")
	// ErrRateLimited: the server answered 429 (a rate limit quota) and went
	// on doing so through the retries, or asked for a longer wait than the
	// connection makes (see Config.MaxRetries). Retrying later is safe.
	ErrRateLimited = errors.New("vault: rate limited")
	// ErrClosed: the connection was closed.
	ErrClosed = errors.New("vault: connection closed")
)

// kind is a sentinel that is also a kind of another one.
type kind struct {
	msg string
	of  error
}

func (k *kind) Error() string { return k.msg }

// Is reports whether target is the sentinel k is a kind of.
func (k *kind) Is(target error) bool { return target == k.of }

// ConfigError reports an invalid Config field.
type ConfigError struct {
	Field, Reason string
	Err           error // the underlying error, if any
}

func (e *ConfigError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("vault: invalid connection config: %s: %s: %v", e.Field, e.Reason, e.Err)
	}
	return fmt.Sprintf("vault: invalid connection config: %s: %s", e.Field, e.Reason)
}

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Error is a failed request. It names the operation, the path and the
// capability it needed; it never holds a secret.
type Error struct {
	Op         string // for example "login", "read", "write", "list"
	Path       string // the API path, for example "secret/data/app"
	Capability string // the capability the request needs, for example "update"
	Status     int    // HTTP status, 0 when there was no answer
	Err        error  // a sentinel of this package, or the underlying error
	// Granted lists the capabilities the token has on Path, as
	// sys/capabilities-self told them after a 403 (["deny"] for none); nil
	// when unknown. Only with ErrPermissionDenied.
	Granted []string
	detail  string
	note    string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("vault: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		if e.Path != "" {
			fmt.Fprintf(&b, " %s", e.Path)
		}
		b.WriteString(": ")
	}
	if errors.Is(e.Err, ErrPermissionDenied) && e.Capability != "" {
		b.WriteString(e.deniedMessage())
	} else {
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "vault: "))
	}
	if e.detail != "" {
		fmt.Fprintf(&b, " (%s)", e.detail)
	}
	if e.note != "" {
		fmt.Fprintf(&b, ", %s", e.note)
	}
	return b.String()
}

func (e *Error) deniedMessage() string {
	if e.Granted == nil {
		return fmt.Sprintf("permission denied: the token lacks the %q capability on %q", e.Capability, e.Path)
	}
	has := "it has none"
	if g := slices.DeleteFunc(slices.Clone(e.Granted), func(c string) bool { return c == "deny" }); len(g) > 0 {
		has = "it has: " + strings.Join(g, ", ")
	}
	if slices.Contains(e.Granted, e.Capability) || slices.Contains(e.Granted, "root") {
		return fmt.Sprintf("permission denied on %q although the token has the %q capability there (%s)", e.Path, e.Capability, has)
	}
	return fmt.Sprintf("permission denied: the token lacks the %q capability on %q (%s)", e.Capability, e.Path, has)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Status returns the HTTP status code of a Vault response error, or 0.
func Status(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Classify turns an error from a Vault request into an *Error with the
// operation, path and capability, and the sentinel that fits. Context errors
// are returned as they are: Classify cannot tell the caller's cancellation
// from the client's own Timeout, which Conn.Do does. A 403 becomes
// ErrPermissionDenied whether the token is dead or the policy refused; Do
// tells them apart. It never copies a request or response body into the
// error, only Vault's error messages, which hold no secret values.
func Classify(err error, op, path, capability string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrClosed) || errors.Is(err, ErrInvalidConfig) {
		return err
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	e := &Error{Op: op, Path: path, Capability: capability, Err: err}
	var re *api.ResponseError
	switch {
	case errors.As(err, &re):
		e.Status = re.StatusCode
		msg := strings.ToLower(strings.Join(re.Errors, "; "))
		e.detail = strings.Join(re.Errors, "; ")
		switch {
		case re.StatusCode == http.StatusServiceUnavailable && strings.Contains(msg, "sealed"):
			e.Err = ErrSealed
		case re.StatusCode == http.StatusTooManyRequests:
			e.Err = ErrRateLimited
		case op == "login" && (re.StatusCode == http.StatusBadRequest || re.StatusCode == http.StatusForbidden):
			e.Err = ErrInvalidCredentials
		case re.StatusCode == http.StatusForbidden:
			e.Err = ErrPermissionDenied
			e.detail = ""
		default:
			e.Err = fmt.Errorf("status %d", re.StatusCode)
		}
	case isContext(err):
		return err
	case isTLS(err):
		e.Err, e.detail = ErrTLS, rootCause(err)
	case isNet(err):
		e.Err, e.detail = ErrUnreachable, rootCause(err)
	}
	return e
}

func isContext(err error) bool {
	return errors.Is(err, errContextCanceled) || errors.Is(err, errDeadline)
}

func isTLS(err error) bool {
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		rh  tls.RecordHeaderError
		cve *tls.CertificateVerificationError
	)
	return errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) || errors.As(err, &rh) || errors.As(err, &cve) ||
		strings.Contains(err.Error(), "tls: ") ||
		// net/http's answer when an https:// address reaches a plain HTTP server.
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

func isNet(err error) bool {
	var (
		oe *net.OpError
		de *net.DNSError
		ue *url.Error
	)
	return errors.As(err, &oe) || errors.As(err, &de) || errors.As(err, &ue)
}

// rootCause returns the innermost error's message, without URLs.
func rootCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}
