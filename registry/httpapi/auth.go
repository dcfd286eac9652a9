package httpapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
	gosync "sync"
)

// authenticator checks a request: it returns who made it, or the status
// (401, 403 or 500) and a value-free reason to refuse it with.
type authenticator func(r *http.Request) (who string, status int, err error)

var (
	errNoCredentials    = errors.New("missing client token")
	errPermissionDenied = errors.New("permission denied")
	errTokenUnavailable = errors.New("authentication is unavailable: the token file cannot be read")
	errNoIdentity       = errors.New("authentication failed: no identity")
)

// newAuthenticator builds the check that Options ask for, or says why it
// cannot.
func newAuthenticator(opts Options) (authenticator, error) {
	n := 0
	for _, set := range []bool{opts.Token != "", opts.TokenFile != "", opts.Authenticate != nil} {
		if set {
			n++
		}
	}
	switch {
	case opts.NoAuth && n > 0:
		return nil, errors.New("httpapi: Options.NoAuth is set together with Token, TokenFile or Authenticate; choose one")
	case opts.NoAuth:
		return func(*http.Request) (string, int, error) { return "unauthenticated", 0, nil }, nil
	case n == 0:
		return nil, errors.New("httpapi: no authentication: set Options.Token, TokenFile or Authenticate (or NoAuth, to serve without)")
	case n > 1:
		return nil, errors.New("httpapi: set only one of Options.Token, TokenFile and Authenticate")
	}
	who := opts.TokenIdentity
	if who == "" {
		who = "token"
	}
	switch {
	case opts.Authenticate != nil:
		return func(r *http.Request) (string, int, error) {
			who, err := opts.Authenticate(r)
			switch {
			case errors.Is(err, ErrUnauthenticated):
				return "", http.StatusUnauthorized, errNoCredentials
			case err != nil:
				return "", http.StatusForbidden, errPermissionDenied
			case who == "":
				return "", http.StatusInternalServerError, errNoIdentity
			}
			return who, 0, nil
		}, nil
	case opts.Token != "":
		sum := sha256.Sum256([]byte(opts.Token))
		return tokenCheck(who, func() ([32]byte, error) { return sum, nil }), nil
	}
	f := &tokenFile{path: opts.TokenFile}
	if _, err := f.current(); err != nil {
		return nil, fmt.Errorf("httpapi: Options.TokenFile: %w", err)
	}
	return tokenCheck(who, func() ([32]byte, error) {
		sum, err := f.current()
		if err != nil {
			return sum, errTokenUnavailable
		}
		return sum, nil
	}), nil
}

// tokenCheck returns an authenticator that compares the tokens a request
// presents with the one whose SHA-256 want returns, in constant time.
// Every token presented (in Authorization and in X-Vault-Token) must be
// the right one.
func tokenCheck(who string, want func() ([32]byte, error)) authenticator {
	return func(r *http.Request) (string, int, error) {
		got, ok := presented(r)
		if !ok {
			return "", http.StatusUnauthorized, errNoCredentials
		}
		sum, err := want()
		if err != nil {
			return "", http.StatusInternalServerError, err
		}
		match := 1
		for _, tok := range got {
			s := sha256.Sum256([]byte(tok))
			match &= subtle.ConstantTimeCompare(s[:], sum[:])
		}
		if match != 1 {
			return "", http.StatusForbidden, errPermissionDenied
		}
		return who, 0, nil
	}
}

// presented returns the tokens a request carries: the bearer token of its
// Authorization header and its X-Vault-Token. A request with an
// Authorization of another scheme, or with an empty token, presents an
// empty one (which never matches).
func presented(r *http.Request) ([]string, bool) {
	var out []string
	for _, v := range r.Header.Values("X-Vault-Token") {
		out = append(out, strings.TrimSpace(v))
	}
	for _, v := range r.Header.Values("Authorization") {
		scheme, tok, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			tok = ""
		}
		out = append(out, strings.TrimSpace(tok))
	}
	return out, len(out) > 0
}

// tokenFile is a token kept in a file, read again when the file changes.
type tokenFile struct {
	path string

	mu   gosync.Mutex
	info os.FileInfo // of the file last read
	sum  [32]byte    // SHA-256 of the token it held
}

// current returns the SHA-256 of the token the file holds now. Its errors
// name the file, never its content.
func (f *tokenFile) current() ([32]byte, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return [32]byte{}, fmt.Errorf("cannot read %s: %w", f.path, pathReason(err))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.info != nil && os.SameFile(f.info, fi) && f.info.ModTime().Equal(fi.ModTime()) && f.info.Size() == fi.Size() {
		return f.sum, nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return [32]byte{}, fmt.Errorf("cannot read %s: %w", f.path, pathReason(err))
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return [32]byte{}, fmt.Errorf("%s is empty", f.path)
	}
	f.info, f.sum = fi, sha256.Sum256(b)
	return f.sum, nil
}

// pathReason returns the reason of a file error without repeating the
// path.
func pathReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
