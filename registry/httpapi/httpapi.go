package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/registry"
)

// Prefix is the path under which the handler serves Vault's /sys/sync API
// (SyncPrefix is that of the sync resources).
const Prefix = "/v1/sys/sync/"

// DefaultMaxRequestBytes is the largest request body accepted when
// Options.MaxRequestBytes is zero.
const DefaultMaxRequestBytes = 1 << 20

// ErrUnauthenticated is what Options.Authenticate returns (or wraps) when
// the request carries no credentials at all: the handler answers 401
// rather than 403.
var ErrUnauthenticated = errors.New("httpapi: no credentials")

// Options configures the handler. Exactly one of Token, TokenFile and
// Authenticate must be set, or NoAuth.
type Options struct {
	// Token is the token that requests present, as
	// "Authorization: Bearer <token>" or "X-Vault-Token: <token>".
	Token string
	// TokenFile is the path of a file holding the token (surrounding
	// white space is ignored). New reads it; requests read it again when
	// its size, modification time or inode changed. When it can no longer
	// be read, or is empty, every request is refused until it can.
	TokenFile string
	// TokenIdentity is who a request with the right Token or TokenFile
	// token is, in audit events; default "token".
	TokenIdentity string
	// Authenticate checks a request and says who made it, for programs
	// with their own authentication. An error refuses the request: with
	// 401 when it matches ErrUnauthenticated, 403 otherwise; its text is
	// never sent. It is called concurrently.
	Authenticate func(r *http.Request) (who string, err error)
	// NoAuth serves every request without authentication. It cannot be
	// combined with the other three.
	NoAuth bool

	// Hosts are the values of the Host header that requests may carry: a
	// name or address ("sync.internal", "10.0.0.5") allows any port, a
	// "host:port" only that port, and "*" any Host (behind a proxy that
	// checks it). Empty means the loopback names and addresses:
	// "localhost" (and names under .localhost), 127.0.0.0/8 and ::1.
	Hosts []string
	// Origins are further origins ("https://console.example.com") whose
	// requests are served, besides the listener's own.
	Origins []string

	// Accessor returns the accessor of a KV mount (for example
	// "kv_eb4acbae"), which keys associations as in Vault; vaultkv's
	// (*KV).MountAccessor is one source. Nil, or an error, means the mount
	// path. It is called concurrently; cache in it if needed.
	Accessor func(ctx context.Context, mount string) (string, error)
	// Auditor receives an event for every mutating call; nil drops them.
	Auditor audit.Auditor
	// Types adds (or replaces) the decoders of create and update bodies,
	// by destination type, for the program's own Config types: see
	// Decoder.
	Types map[string]ConfigDecoder
	// Syncs are the program's syncs, served under SyncPrefix (see "Sync
	// resources" in the package documentation); nil serves none of them.
	Syncs Syncs
	// RegistrySyncs serves, under SyncPrefix too, the syncs of the
	// registry's associations, by their sync names
	// (registry.Association.SyncName), after those of Syncs (a name that
	// Syncs has is Syncs'). It needs a registry.
	RegistrySyncs bool

	// MaxRequestBytes is the largest request body; 0 means
	// DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// Now returns the current time, for audit events; nil means time.Now.
	Now func() time.Time
}

// handler serves the API over one registry.
type handler struct {
	reg      *registry.Registry
	opts     Options
	auth     authenticator
	types    map[string]ConfigDecoder
	origins  map[string]bool
	maxBytes int64
	auditor  audit.Auditor
}

// New returns a handler that serves reg under Prefix, and the syncs of
// Options.Syncs (and of reg's associations, with Options.RegistrySyncs)
// under SyncPrefix. reg may be nil when Options.Syncs is set: the paths
// under Prefix then answer 404. New refuses options that set no
// authentication (unless NoAuth), more than one, an empty Token, a
// TokenFile it cannot read or that is empty, or a malformed Host or
// Origin.
// A nil options means the zero Options.
func New(reg *registry.Registry, options *Options) (http.Handler, error) {
	var opts Options
	if options != nil {
		opts = *options
	}
	switch {
	case reg == nil && opts.Syncs == nil:
		return nil, errors.New("httpapi: nil registry (and no Options.Syncs)")
	case reg == nil && opts.RegistrySyncs:
		return nil, errors.New("httpapi: Options.RegistrySyncs needs a registry")
	}
	auth, err := newAuthenticator(opts)
	if err != nil {
		return nil, err
	}
	h := &handler{
		reg:      reg,
		opts:     opts,
		auth:     auth,
		types:    builtinTypes(),
		origins:  map[string]bool{},
		maxBytes: opts.MaxRequestBytes,
		auditor:  opts.Auditor,
	}
	for typ, dec := range opts.Types {
		if dec == nil {
			return nil, fmt.Errorf("httpapi: Options.Types[%q] is nil", typ)
		}
		h.types[typ] = dec
	}
	for _, host := range opts.Hosts {
		if host == "" || strings.ContainsAny(host, "/ \t") {
			return nil, fmt.Errorf("httpapi: Options.Hosts: %q is not a host name, address or host:port", host)
		}
	}
	for _, o := range opts.Origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			return nil, fmt.Errorf("httpapi: Options.Origins: %q is not an origin (scheme://host[:port])", o)
		}
		h.origins[strings.ToLower(o)] = true
	}
	if h.maxBytes <= 0 {
		h.maxBytes = DefaultMaxRequestBytes
	}
	if h.auditor == nil {
		h.auditor = audit.Discard
	}
	if h.opts.Now == nil {
		h.opts.Now = time.Now
	}
	return h, nil
}

// request is what the handler knows of one request as it serves it.
type request struct {
	id  string // the request_id of the answer and of audit events
	who string // the authenticated identity, "" before authentication
	w   http.ResponseWriter
	r   *http.Request
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := &request{id: newUUID(), w: w, r: r}
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")

	if why := h.refuseOrigin(r); why != "" {
		h.deny(q, http.StatusForbidden, why)
		return
	}
	who, status, err := h.auth(r)
	if err != nil {
		if status == http.StatusUnauthorized {
			hdr.Set("WWW-Authenticate", `Bearer realm="secretsync"`)
		}
		h.deny(q, status, err.Error())
		return
	}
	q.who = who
	h.route(q)
}

// deny answers a request refused before it reached the API, and audits it
// when it would have changed something.
func (h *handler) deny(q *request, status int, msg string) {
	if mutating(q.r.Method) {
		h.emit(q, audit.Event{
			Type:      EventRequestDenied,
			Operation: strings.ToLower(q.r.Method),
			Outcome:   audit.Failure,
			Message:   msg,
		}, status, nil)
	}
	writeError(q.w, status, msg)
}

// mutating reports whether a method changes something.
func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, "LIST":
		return false
	}
	return true
}
